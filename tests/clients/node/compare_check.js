// Prints what mysql2 reports for a fixed set of statements on Switchyard's data port, so
// that direct and proxied runs can be compared line for line (tests/driver_compare.rs).
// Usage: node compare_check.js PORT   (user acme_app, db wf_acme)
const mysql = require('mysql2/promise');

const STATEMENTS = [
  'SELECT * FROM drv_types ORDER BY id',
  "SELECT 'é🐙 ü' AS s, NULL AS n, 1.50 AS dec_lit, CAST(NULL AS DATETIME) AS nd",
  'SELECT 1/0 AS div0',
  'SHOW WARNINGS',
  'SELECT * FROM no_such_table_drv',
  'SELECT DATABASE(), @@character_set_client, @@collation_connection',
];

async function main() {
  const conn = await mysql.createConnection({
    host: '127.0.0.1', port: Number(process.argv[2]), user: 'acme_app',
    password: 'acme_pw', database: 'wf_acme', charset: 'utf8mb4_general_ci',
    timezone: 'Z', supportBigNumbers: true,
  });
  for (const sql of STATEMENTS) {
    console.log('==', sql);
    try {
      const [rows, fields] = await conn.query({ sql, rowsAsArray: true });
      for (const f of fields) {
        const { name, columnType, characterSet, flags, decimals, columnLength, type } = f;
        console.log(' column', JSON.stringify({ name, columnType, characterSet, flags, decimals, columnLength, type }));
      }
      for (const row of rows) {
        console.log(' row', JSON.stringify(row, (k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
      }
    } catch (e) {
      if (!e.sqlState) throw e;
      console.log(' error', e.errno, e.code, e.sqlState, e.sqlMessage);
    }
  }
  await conn.end();
  console.log('done');
}

main().catch((e) => { console.error(e); process.exit(1); });
