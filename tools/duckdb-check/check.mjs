// Runs SQL queries with DuckDB and prints their results as JSON, so that a
// Go test can check that DuckDB reads KalamDB's Parquet segments.
//
//   node check.mjs '["SELECT * FROM read_parquet(''/path/seg.parquet'')", ...]'
//
// Prints one JSON document: an array with, per query, {columns: [{name,
// type}], rows: [[...], ...]} where every value is rendered by DuckDB's
// JSON conversion (integers beyond 2^53 as strings).
import { DuckDBInstance } from '@duckdb/node-api';

const queries = JSON.parse(process.argv[2] ?? '[]');
if (!Array.isArray(queries) || queries.length === 0) {
  console.error('usage: node check.mjs \'["SQL", ...]\'');
  process.exit(2);
}

const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
const out = [];
for (const sql of queries) {
  const reader = await conn.runAndReadAll(sql);
  out.push({
    columns: reader.columnNames().map((name, i) => ({ name, type: reader.columnTypes()[i].toString() })),
    rows: reader.getRowsJson(),
  });
}
process.stdout.write(JSON.stringify(out));
conn.closeSync?.();
