// What an analyst's JS program does with the official ClickHouse client
// (@clickhouse/client), against the warehouse front at the URL given as the
// first argument. Each check prints "ok <name>"; the first that fails prints
// "FAIL <name>: <why>" and ends the run with exit status 1.
'use strict'
const { createClient, ClickHouseLogLevel } = require('@clickhouse/client')

const url = process.argv[2]
const run = Date.now().toString(36) + process.pid

async function rows(client, query, params = {}) {
  const rs = await client.query({ query, format: 'JSONEachRow', ...params })
  return rs.json()
}

// refused runs f and returns the ClickHouse error code it failed with, or
// throws when it did not fail.
async function refused(what, f) {
  try {
    await f()
  } catch (err) {
    return String(err.code)
  }
  throw new Error(`${what} was not refused`)
}

const checks = [
  ['ping', async ({ plain }) => {
    const r = await plain.ping()
    if (!r.success) throw new Error(`ping: ${r.error}`)
  }],
  ['a SET stays in its session_id', async ({ a, b }) => {
    await a.command({ query: 'SET max_result_rows = 12345' })
    const [inA] = await rows(a, "SELECT getSetting('max_result_rows') AS v")
    const [inB] = await rows(b, "SELECT getSetting('max_result_rows') AS v")
    if (String(inA.v) !== '12345') throw new Error(`session a reads max_result_rows ${inA.v}, want 12345`)
    if (String(inB.v) === '12345') throw new Error('session b sees the SET of session a')
  }],
  ['a temporary table lives in its session only', async ({ a, b, plain }) => {
    await a.command({ query: 'CREATE TEMPORARY TABLE js_tmp (n UInt8)' })
    await a.insert({ table: 'js_tmp', values: [{ n: 1 }, { n: 2 }], format: 'JSONEachRow' })
    const [own] = await rows(a, 'SELECT count() AS c FROM js_tmp')
    if (Number(own.c) !== 2) throw new Error(`session a counts ${own.c} rows of its temporary table, want 2`)
    const inB = await refused('reading session a\'s temporary table from session b', () => rows(b, 'SELECT count() FROM js_tmp'))
    const alone = await refused('reading session a\'s temporary table without a session', () => rows(plain, 'SELECT count() FROM js_tmp'))
    if (inB !== '60' || alone !== '60') throw new Error(`other sessions got codes ${inB} and ${alone}, want UNKNOWN_TABLE (60)`)
  }],
  ['a per-query session_id overrides the client\'s', async ({ plain }) => {
    await plain.command({ query: 'SET max_result_rows = 777', session_id: `js-c-${run}` })
    const [r] = await rows(plain, "SELECT getSetting('max_result_rows') AS v", { session_id: `js-c-${run}` })
    if (String(r.v) !== '777') throw new Error(`max_result_rows ${r.v} in the query's own session, want 777`)
  }],
  ['readonly=1 limits its own client only', async ({ readonly, plain }) => {
    const [one] = await rows(readonly, 'SELECT 1 AS one')
    if (Number(one.one) !== 1) throw new Error('a read-only client cannot read')
    const code = await refused('a write by the readonly=1 client',
      () => readonly.command({ query: `CREATE TABLE default.js_ro_${run} (n UInt8) ENGINE = Memory` }))
    if (code !== '164') throw new Error(`the readonly=1 client's write got code ${code}, want READONLY (164)`)
    const table = `default.js_written_${run}`
    await plain.command({ query: `CREATE TABLE ${table} (n UInt8) ENGINE = MergeTree ORDER BY n` })
    await plain.insert({ table, values: [{ n: 7 }], format: 'JSONEachRow' })
    const [r] = await rows(plain, `SELECT sum(n) AS s FROM ${table}`)
    await plain.command({ query: `DROP TABLE ${table}` })
    if (Number(r.s) !== 7) throw new Error(`another client wrote ${r.s}, want 7`)
  }],
  ['query parameters are bound, not pasted', async ({ plain }) => {
    const [r] = await rows(plain, 'SELECT {a:UInt32} + {b:UInt32} AS s, {name:String} AS name, {day:Date} AS day', {
      query_params: { a: 40, b: 2, name: "it's a 'quote'; DROP TABLE x", day: '2023-02-13' },
    })
    if (Number(r.s) !== 42 || r.name !== "it's a 'quote'; DROP TABLE x" || r.day !== '2023-02-13') {
      throw new Error(`got ${JSON.stringify(r)}`)
    }
  }],
]

async function main() {
  // The refusals are expected: the client need not log them.
  const quiet = { url, log: { level: ClickHouseLogLevel.OFF } }
  const clients = {
    a: createClient({ ...quiet, session_id: `js-a-${run}` }),
    b: createClient({ ...quiet, session_id: `js-b-${run}` }),
    plain: createClient(quiet),
    readonly: createClient({ ...quiet, clickhouse_settings: { readonly: '1' } }),
  }
  let failed = false
  for (const [name, check] of checks) {
    try {
      await check(clients)
      console.log(`ok ${name}`)
    } catch (err) {
      console.log(`FAIL ${name}: ${err && err.message}`)
      failed = true
      break
    }
  }
  await Promise.all(Object.values(clients).map((c) => c.close()))
  process.exit(failed ? 1 : 0)
}

main().catch((err) => {
  console.log(`FAIL setup: ${err && err.stack}`)
  process.exit(1)
})
