// Logs in to Switchyard's admin port with MariaDB Connector/J and runs the admin commands
// tests/admin_drivers.rs checks, printing each answer in the format it parses (see
// admin_check.py). Compiled at test time: javac -cp mariadb-java-client.jar AdminCheck.java
import java.sql.*;

public class AdminCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://127.0.0.1:" + System.getenv("SY_ADMIN_PORT") + "/";
        try (Connection c = DriverManager.getConnection(url, System.getenv("SY_ADMIN_USER"),
                System.getenv("SY_ADMIN_PASSWORD"))) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("driver " + md.getDriverName() + " " + md.getDriverVersion());
            String t = System.getenv("SY_TENANT");
            String[] stmts = {"SHOW BACKENDS", "PAUSE TENANT " + t + " TIMEOUT 5", "SHOW TENANTS",
                "RESUME TENANT " + t};
            try (Statement s = c.createStatement()) {
                for (String sql : stmts) {
                    try (ResultSet rs = s.executeQuery(sql)) {
                        System.out.println("== " + sql);
                        ResultSetMetaData m = rs.getMetaData();
                        StringBuilder cols = new StringBuilder("columns");
                        for (int i = 1; i <= m.getColumnCount(); i++) {
                            cols.append('\t').append(m.getColumnLabel(i));
                        }
                        System.out.println(cols);
                        while (rs.next()) {
                            StringBuilder row = new StringBuilder("row");
                            for (int i = 1; i <= m.getColumnCount(); i++) {
                                String v = rs.getString(i);
                                row.append('\t').append(v == null ? "\\N" : v);
                            }
                            System.out.println(row);
                        }
                    }
                }
            }
            if (!c.isValid(5)) {
                throw new IllegalStateException("isValid false");
            }
        }
        System.out.println("done");
    }
}
