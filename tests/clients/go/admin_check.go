// Logs in to Switchyard's admin port with go-sql-driver/mysql and runs the admin commands
// tests/admin_drivers.rs checks, printing each answer in the format it parses (see
// ../admin_check.py). Built in GOPATH mode against Debian's packaged driver.
package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	_ "github.com/go-sql-driver/mysql"
)

func main() {
	dsn := fmt.Sprintf("%s:%s@tcp(127.0.0.1:%s)/", os.Getenv("SY_ADMIN_USER"),
		os.Getenv("SY_ADMIN_PASSWORD"), os.Getenv("SY_ADMIN_PORT"))
	db, err := sql.Open("mysql", dsn)
	check(err)
	defer db.Close()
	check(db.Ping())
	fmt.Println("driver go-sql-driver/mysql")
	t := os.Getenv("SY_TENANT")
	for _, q := range []string{"SHOW BACKENDS", "PAUSE TENANT " + t + " TIMEOUT 5", "SHOW TENANTS",
		"RESUME TENANT " + t} {
		rows, err := db.Query(q)
		check(err)
		cols, err := rows.Columns()
		check(err)
		fmt.Println("==", q)
		fmt.Println("columns\t" + strings.Join(cols, "\t"))
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			check(rows.Scan(ptrs...))
			out := []string{"row"}
			for _, v := range vals {
				if v.Valid {
					out = append(out, v.String)
				} else {
					out = append(out, `\N`)
				}
			}
			fmt.Println(strings.Join(out, "\t"))
		}
		check(rows.Err())
		rows.Close()
	}
	fmt.Println("done")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
