// node-postgres against a pgwire grant: every case runs once with untyped
// parameters (as node-postgres always sends them) and once with the same
// values written as literals. Prints one JSON object: for each case, the
// rows of both. Usage: node node_params.mjs <url> <ca-file>; the password
// comes from PGPASSWORD, as libpq's does.
import fs from 'node:fs';
import pg from 'pg';

const [url, caFile] = process.argv.slice(2);
const client = new pg.Client({
  connectionString: url.replace(/\?.*$/, ''),
  ssl: { ca: fs.readFileSync(caFile, 'utf8'), rejectUnauthorized: true, checkServerIdentity: () => undefined },
});

const cases = [
  ['integer modulo', 'SELECT id FROM orders WHERE id % 7 = $1 ORDER BY id', [3],
   'SELECT id FROM orders WHERE id % 7 = 3 ORDER BY id'],
  ['float comparison', 'SELECT id FROM orders WHERE amount > $1 ORDER BY id', [100],
   'SELECT id FROM orders WHERE amount > 100 ORDER BY id'],
  ['text equality', 'SELECT id FROM orders WHERE customer = $1 ORDER BY id', ['Ada'],
   "SELECT id FROM orders WHERE customer = 'Ada' ORDER BY id"],
  ['boolean', 'SELECT id FROM orders WHERE paid = $1 ORDER BY id', [true],
   'SELECT id FROM orders WHERE paid = true ORDER BY id'],
  ['date from a Date', 'SELECT id FROM orders WHERE placed >= $1 ORDER BY id',
   [new Date(Date.UTC(2026, 2, 1))],
   "SELECT id FROM orders WHERE placed >= '2026-03-01' ORDER BY id"],
  ['date from text', 'SELECT id FROM orders WHERE placed < $1 ORDER BY id', ['2026-03-01'],
   "SELECT id FROM orders WHERE placed < '2026-03-01' ORDER BY id"],
  ['timestamp', 'SELECT id FROM orders WHERE shipped_at < $1 ORDER BY id',
   ['2026-04-01T12:00:00'],
   "SELECT id FROM orders WHERE shipped_at < '2026-04-01 12:00:00' ORDER BY id"],
  ['arithmetic', 'SELECT id + $1 FROM orders ORDER BY id', [10],
   'SELECT id + 10 FROM orders ORDER BY id'],
  ['case-sensitive LIKE', 'SELECT id FROM orders WHERE customer LIKE $1 ORDER BY id', ['A%'],
   "SELECT id FROM orders WHERE customer LIKE 'A%' ORDER BY id"],
  ['IN list', 'SELECT id FROM orders WHERE id IN ($1, $2) ORDER BY id', [2, 5],
   'SELECT id FROM orders WHERE id IN (2, 5) ORDER BY id'],
  ['NULL parameter', 'SELECT id FROM orders WHERE note IS NOT DISTINCT FROM $1 ORDER BY id', [null],
   'SELECT id FROM orders WHERE note IS NULL ORDER BY id'],
  ['LIMIT', 'SELECT id FROM orders ORDER BY id LIMIT $1', [3],
   'SELECT id FROM orders ORDER BY id LIMIT 3'],
];

const report = {};
try {
  await client.connect();
  for (const [name, withParams, values, literal] of cases) {
    const a = await client.query({ text: withParams, values, rowMode: 'array' });
    const b = await client.query({ text: literal, rowMode: 'array' });
    report[name] = { parameters: a.rows, literals: b.rows };
  }
} catch (e) {
  report.error = `${e.code ?? ''} ${e.message}`;
}
await client.end().catch(() => {});
console.log(JSON.stringify(report));
