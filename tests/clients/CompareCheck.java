// Prints what MariaDB Connector/J reports for what a Java application does on Switchyard's
// data port, so that direct and proxied runs can be compared line for line
// (tests/driver_compare.rs): a query and a server-side prepared one (values, column labels,
// types, precision, scale, nullability), a warning, an error (code, SQLSTATE, message), a
// read under a query timeout (the driver sends SET STATEMENT max_statement_time ... FOR),
// autocommit and read-only switches, a rewritten batch read back at once, isValid().
// Usage: java -cp mariadb-java-client.jar:. CompareCheck PORT  (user acme_app, db wf_acme)
import java.sql.*;

public class CompareCheck {
    static void print(ResultSet rs) throws SQLException {
        ResultSetMetaData m = rs.getMetaData();
        for (int i = 1; i <= m.getColumnCount(); i++) {
            System.out.println(" column " + m.getColumnLabel(i) + " " + m.getColumnTypeName(i)
                + " " + m.getColumnType(i) + " " + m.getPrecision(i) + " " + m.getScale(i)
                + " " + m.isNullable(i) + " " + m.getColumnClassName(i));
        }
        while (rs.next()) {
            StringBuilder row = new StringBuilder(" row");
            for (int i = 1; i <= m.getColumnCount(); i++) {
                Object v = rs.getObject(i);
                row.append(" | ").append(v == null ? "NULL" : v.toString());
            }
            System.out.println(row);
        }
    }

    static void warnings(Statement s) throws SQLException {
        for (SQLWarning w = s.getWarnings(); w != null; w = w.getNextWarning()) {
            System.out.println(" warning " + w.getErrorCode() + " " + w.getSQLState() + " "
                + w.getMessage());
        }
    }

    static void query(Statement s, String sql) throws SQLException {
        System.out.println("== " + sql);
        try (ResultSet rs = s.executeQuery(sql)) {
            print(rs);
        } catch (SQLException e) {
            // The driver puts the connection id in the message: Switchyard's session id
            // through it, the server's thread id directly.
            String msg = e.getMessage().replaceFirst("^\\(conn=\\d+\\) ", "");
            System.out.println(" error " + e.getErrorCode() + " " + e.getSQLState() + " " + msg);
        }
        warnings(s);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/wf_acme?useServerPrepStmts=true"
            + "&rewriteBatchedStatements=true";
        try (Connection c = DriverManager.getConnection(url, "acme_app", "acme_pw")) {
            try (Statement s = c.createStatement()) {
                query(s, "SELECT * FROM drv_types ORDER BY id");
                query(s, "SELECT 'é🐙 ü' AS s, NULL AS n, 1.50 AS dec_lit,"
                    + " CAST(NULL AS DATETIME) AS nd");
                query(s, "SELECT 1/0 AS div0");
                query(s, "SELECT * FROM no_such_table_drv");
                s.setQueryTimeout(5);
                query(s, "SELECT id, d FROM drv_types ORDER BY id");
                s.setQueryTimeout(0);
            }
            System.out.println("== prepared");
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT id, t, d, dt FROM drv_types WHERE id > ? ORDER BY id")) {
                for (int from : new int[] {0, 1}) {
                    p.setInt(1, from);
                    try (ResultSet rs = p.executeQuery()) {
                        print(rs);
                    }
                }
            }
            System.out.println("== batch");
            try (Statement s = c.createStatement()) {
                s.executeUpdate("DELETE FROM drv_java");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO drv_java (v) VALUES (?)")) {
                for (int v = 1; v <= 3; v++) {
                    p.setInt(1, v);
                    p.addBatch();
                }
                int[] counts = p.executeBatch();
                System.out.println(" batch " + counts.length);
            }
            try (Statement s = c.createStatement()) {
                query(s, "SELECT v FROM drv_java ORDER BY v");
            }
            System.out.println("== transaction");
            System.out.println(" autocommit " + c.getAutoCommit());
            c.setAutoCommit(false);
            System.out.println(" autocommit " + c.getAutoCommit());
            try (Statement s = c.createStatement()) {
                s.executeUpdate("UPDATE drv_java SET v = v + 10 WHERE v = 1");
                query(s, "SELECT v FROM drv_java ORDER BY v");
            }
            c.rollback();
            c.setAutoCommit(true);
            System.out.println(" autocommit " + c.getAutoCommit());
            c.setReadOnly(true);
            try (Statement s = c.createStatement()) {
                query(s, "SELECT v FROM drv_java ORDER BY v");
                query(s, "SELECT @@session.tx_read_only AS ro");
            }
            c.setReadOnly(false);
            try (Statement s = c.createStatement()) {
                query(s, "SELECT DATABASE(), @@character_set_client, @@collation_connection");
            }
            System.out.println(" valid " + c.isValid(5));
        }
        System.out.println("done");
    }
}
