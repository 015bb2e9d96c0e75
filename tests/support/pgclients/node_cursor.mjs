// pg-cursor against a pgwire grant: reads a query's rows in batches of the
// given size (Execute with a row limit; the tunnel answers PortalSuspended
// until the rows run out). Prints {"batches": [sizes], "rows": [...]}.
// Usage: node node_cursor.mjs <url> <ca-file> <batch> <sql>; the password
// comes from PGPASSWORD.
import fs from 'node:fs';
import pg from 'pg';
import Cursor from 'pg-cursor';

const [url, caFile, batch, sql] = process.argv.slice(2);
const client = new pg.Client({
  connectionString: url.replace(/\?.*$/, ''),
  ssl: { ca: fs.readFileSync(caFile, 'utf8'), rejectUnauthorized: true, checkServerIdentity: () => undefined },
});
const report = { batches: [], rows: [] };
try {
  await client.connect();
  const cursor = client.query(new Cursor(sql, [], { rowMode: 'array' }));
  for (;;) {
    const rows = await cursor.read(Number(batch));
    if (rows.length === 0) break;
    report.batches.push(rows.length);
    report.rows.push(...rows);
  }
  await cursor.close();
  // The connection is usable afterwards.
  report.after = (await client.query({ text: 'SELECT count(*) FROM orders', rowMode: 'array' })).rows;
} catch (e) {
  report.error = `${e.code ?? ''} ${e.message}`;
}
await client.end().catch(() => {});
console.log(JSON.stringify(report));
