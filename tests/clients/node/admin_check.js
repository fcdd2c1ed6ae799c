// Logs in to Switchyard's admin port with mysql2 and runs the admin commands
// tests/admin_drivers.rs checks, printing each answer in the format it parses (see
// ../admin_check.py).
const mysql = require('mysql2/promise');

async function main() {
  const env = process.env;
  const conn = await mysql.createConnection({
    host: '127.0.0.1', port: Number(env.SY_ADMIN_PORT),
    user: env.SY_ADMIN_USER, password: env.SY_ADMIN_PASSWORD,
  });
  console.log('driver mysql2', require('mysql2/package.json').version);
  const t = env.SY_TENANT;
  for (const sql of ['SHOW BACKENDS', `PAUSE TENANT ${t} TIMEOUT 5`, 'SHOW TENANTS', `RESUME TENANT ${t}`]) {
    const [rows, fields] = await conn.query({ sql, rowsAsArray: true });
    console.log('==', sql);
    console.log(['columns', ...fields.map((f) => f.name)].join('\t'));
    for (const row of rows) {
      console.log(['row', ...row.map((v) => (v === null ? '\\N' : String(v)))].join('\t'));
    }
  }
  await conn.ping();
  await conn.end();
  console.log('done');
}

main().catch((e) => { console.error(e); process.exit(1); });
