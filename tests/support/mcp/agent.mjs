// An AI agent's side of the MCP end-to-end test, written with the official
// MCP TypeScript SDK client against a real kernel:
//   node agent.mjs <mcp url> <bearer token> <report file>
// It first probes the endpoint without a token, then connects, lists the
// tools, asks for access and prints one line {"request_id","state"} (the
// test approves the ask as a human when it reads it), follows the request
// until it is ready, queries it, and writes what it saw to the report file
// (JSON) before it exits. Everything printed on stdout is one JSON line.
import {renameSync, writeFileSync} from 'node:fs';

import {Client} from '@modelcontextprotocol/sdk/client/index.js';
import {StreamableHTTPClientTransport} from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token, reportPath] = process.argv.slice(2);
const report = {};
let announced = false;

function finish(code) {
  writeFileSync(`${reportPath}.tmp`, JSON.stringify(report, null, 2));
  renameSync(`${reportPath}.tmp`, reportPath);
  if (!announced) console.log(JSON.stringify({error: report.error || 'no request was made'}));
  process.exit(code);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function newClient() {
  return new Client({name: 'airlock-e2e-agent', version: '1.0.0'});
}

// What a tool call came to, kept whole for the report.
async function call(client, name, args) {
  const result = await client.callTool({name, arguments: args});
  return {
    isError: result.isError === true,
    structured: result.structuredContent ?? null,
    text: result.content && result.content[0] ? result.content[0].text : null,
  };
}

try {
  // Without a token: refused, and told where the resource's metadata is.
  const initialize = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {protocolVersion: '2025-11-25', capabilities: {}, clientInfo: {name: 'probe', version: '1'}},
  };
  const bare = await fetch(url, {
    method: 'POST',
    headers: {'Content-Type': 'application/json', Accept: 'application/json, text/event-stream'},
    body: JSON.stringify(initialize),
  });
  report.unauthenticated = {status: bare.status, www_authenticate: bare.headers.get('www-authenticate')};
  try {
    const anonymous = newClient();
    await anonymous.connect(new StreamableHTTPClientTransport(new URL(url)));
    report.sdk_without_token = 'connected';
    await anonymous.close();
  } catch (e) {
    report.sdk_without_token = {code: e && e.code, message: String(e && e.message)};
  }
  const metadataUrl = /resource_metadata="([^"]+)"/.exec(report.unauthenticated.www_authenticate || '');
  if (metadataUrl) report.metadata = await (await fetch(metadataUrl[1])).json();

  // The agent, with its token.
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: {headers: {Authorization: `Bearer ${token}`}},
  });
  await client.connect(transport);
  report.server = client.getServerVersion();
  report.protocol_version = transport.protocolVersion ?? null;
  report.tools = (await client.listTools()).tools.map((t) => t.name);
  report.list_datasets = await call(client, 'list_datasets', {});
  report.describe = await call(client, 'describe_dataset', {name: 'orders'});
  report.describe_unknown = await call(client, 'describe_dataset', {name: 'no_such_dataset'});
  const resources = (await client.listResources()).resources;
  report.resources = resources.map((r) => r.uri);
  if (resources.length > 0) {
    const read = await client.readResource({uri: resources[0].uri});
    report.schema = JSON.parse(read.contents[0].text);
  }
  report.query_before_ready = await call(client, 'query', {request_id: 'req_000000000000', sql: 'SELECT 1'});

  report.asked = await call(client, 'request_access', {
    datasets: ['orders'],
    purpose: 'Weekly revenue summary for the finance team',
    window_seconds: 600,
  });
  const id = report.asked.structured && report.asked.structured.id;
  if (!id) throw new Error(`request_access failed: ${report.asked.text}`);
  console.log(JSON.stringify({request_id: id, state: report.asked.structured.state}));
  announced = true;

  // A human approves; the agent follows the request until it is ready.
  report.states = [];
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const status = await call(client, 'request_status', {request_id: id});
    const state = status.structured ? status.structured.state : `error: ${status.text}`;
    if (report.states[report.states.length - 1] !== state) report.states.push(state);
    if (['ready', 'denied', 'failed', 'closed', 'expired', 'revoked'].includes(state)) break;
    await sleep(200);
  }

  report.tables = await call(client, 'list_tables', {request_id: id});
  report.query = await call(client, 'query', {
    request_id: id,
    sql: 'SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders',
  });
  report.capped = await call(client, 'query', {
    request_id: id,
    sql: 'SELECT order_id FROM orders ORDER BY order_id',
    max_rows: 1,
  });
  report.aggregate = await call(client, 'aggregate', {
    request_id: id,
    dataset: 'orders',
    dimensions: ['order_id'],
    metrics: [{function: 'count'}, {function: 'sum', column: 'amount'}],
  });
  report.bad_sql = await call(client, 'query', {request_id: id, sql: 'SELECT nope FROM nowhere'});
  report.missing_argument = await call(client, 'query', {request_id: id});
  // A second ask that waits for the human in the call itself, told of each
  // state on the way (the test approves it when it shows up in the queue).
  const progress = [];
  const waited = await client.callTool(
      {
        name: 'request_access',
        arguments: {datasets: ['orders'], purpose: 'Monthly revenue summary', wait_seconds: 60},
      },
      undefined,
      {onprogress: (p) => progress.push(p), timeout: 90000, resetTimeoutOnProgress: true});
  report.waited = {
    isError: waited.isError === true,
    structured: waited.structuredContent ?? null,
    progress,
  };
  try {
    await client.callTool({name: 'no_such_tool', arguments: {}});
    report.unknown_tool = 'answered';
  } catch (e) {
    report.unknown_tool = {code: e.code, message: e.message};
  }
  await client.close();
  finish(0);
} catch (e) {
  report.error = String((e && e.stack) || e);
  finish(1);
}
