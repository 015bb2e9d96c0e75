// The PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java) against a
// server: connect, DatabaseMetaData's tables and columns, and a prepared
// statement with typed parameters. Prints one JSON object. Run as a
// single-file program: java -cp postgresql.jar JdbcClient.java <url>; the
// user and password come from PGUSER and PGPASSWORD.
import java.sql.*;
import java.util.*;

public class JdbcClient {
  static String quote(String s) {
    if (s == null) return "null";
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  public static void main(String[] args) {
    StringBuilder out = new StringBuilder("{");
    try (Connection c = DriverManager.getConnection(args[0], System.getenv("PGUSER"),
                                                    System.getenv("PGPASSWORD"))) {
      DatabaseMetaData md = c.getMetaData();
      List<String> tables = new ArrayList<>();
      try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
        while (rs.next()) tables.add(quote(rs.getString("TABLE_NAME")));
      }
      out.append("\"tables\": [").append(String.join(", ", tables)).append("], ");
      List<String> columns = new ArrayList<>();
      try (ResultSet rs = md.getColumns(null, "public", "orders", "%")) {
        while (rs.next()) {
          columns.add("[" + quote(rs.getString("COLUMN_NAME")) + ", " + rs.getInt("DATA_TYPE") +
                      ", " + quote(rs.getString("TYPE_NAME")) + ", " +
                      rs.getInt("ORDINAL_POSITION") + "]");
        }
      }
      out.append("\"columns\": [").append(String.join(", ", columns)).append("], ");
      List<String> rows = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement(
               "SELECT id, customer, amount, placed FROM orders WHERE id >= ? AND placed >= ? "
               + "AND customer <> ? AND amount > ? ORDER BY id")) {
        ps.setLong(1, 2);
        ps.setDate(2, java.sql.Date.valueOf("2026-02-01"));
        ps.setString(3, "Alan");
        ps.setDouble(4, 10.0);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            rows.add("[" + rs.getLong(1) + ", " + quote(rs.getString(2)) + ", " + rs.getDouble(3)
                     + ", " + quote(rs.getDate(4).toString()) + "]");
          }
        }
      }
      out.append("\"rows\": [").append(String.join(", ", rows)).append("], ");
      // A fetch size reads through a suspended portal inside a transaction.
      c.setAutoCommit(false);
      int fetched = 0;
      try (Statement st = c.createStatement()) {
        st.setFetchSize(4);
        try (ResultSet rs = st.executeQuery("SELECT id FROM orders ORDER BY id")) {
          while (rs.next()) ++fetched;
        }
      }
      c.commit();
      out.append("\"fetched\": ").append(fetched).append(", ");
      out.append("\"product\": ").append(quote(md.getDatabaseProductName()));
    } catch (Exception e) {
      out.append("\"error\": ").append(quote(e.toString()));
    }
    System.out.println(out.append("}"));
  }
}
