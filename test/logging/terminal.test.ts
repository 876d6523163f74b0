/**
 * The readable log format on real pino output: a pino logger (the one Fastify bundles) writes
 * through loggerOptions() into a PassThrough that says it is, or is not, a terminal.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { formatLine, loggerOptions, logFormat, TerminalLogStream, useColor } from '../../src/logging/index.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { rawRequest } from '../helpers/raw-http.ts';

/** A captured output; `isTTY` as a terminal would have it. */
function sink(isTTY: boolean): PassThrough & { isTTY: boolean; lines: string[] } {
  const stream = Object.assign(new PassThrough(), { isTTY, lines: [] as string[] });
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (pending + chunk.toString()).split('\n');
    pending = parts.pop() ?? '';
    stream.lines.push(...parts);
  });
  return stream;
}

/** Lets the streams between pino and the sink pass on what they hold. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A pino logger as Fastify makes one from its `logger` option (pino takes the stream apart from its options). */
const pinoFrom = (options: { level: string; stream: NodeJS.WritableStream }, extra: pino.LoggerOptions = {}) =>
  pino({ level: options.level, ...extra }, options.stream);

const TIME = /^\d\d:\d\d:\d\d\.\d{3} /;

test('a terminal gets one readable line per event: time, level, role, message, fields, request id', async () => {
  const out = sink(true);
  const log = pinoFrom(loggerOptions({ level: 'debug', stream: out, env: { NO_COLOR: '1' } }), { name: 'http' });
  log.info('listening');
  log.warn({ site: 'dc1', cap: 50, note: 'two words' }, 'site at its cap');
  log.child({ reqId: 'req-7' }).info({ res: { statusCode: 404 }, responseTime: 3.14159 }, 'request completed');
  log.child({ reqId: 'req-8' }).info({ req: { method: 'GET', url: '/boot/aa', remoteAddress: '10.0.0.9' } }, 'in');
  log.debug({ nested: { a: 1, b: [2, 3] } }, 'debug with an object');
  log.error({ err: Object.assign(new Error('disk\nfull'), { code: 'ENOSPC' }) }, 'write failed');
  await settle();

  assert.equal(out.lines.length, 6, out.lines.join('\n'));
  for (const line of out.lines) assert.match(line, TIME, line);
  const [listening, cap, completed, incoming, debug, failed] = out.lines.map((l) => l.replace(TIME, ''));
  assert.equal(listening, 'INFO  [http] listening');
  assert.equal(cap, 'WARN  [http] site at its cap site=dc1 cap=50 note="two words"');
  assert.equal(completed, 'INFO  [http] request completed → 404 in 3.1 ms reqId=req-7');
  assert.equal(incoming, 'INFO  [http] in GET /boot/aa remoteAddress=10.0.0.9 reqId=req-8');
  assert.equal(debug, 'DEBUG [http] debug with an object nested={"a":1,"b":[2,3]}');
  assert.match(failed!, /^ERROR \[http\] write failed err="Error: disk\\nfull \(at .+\)" err\.code=ENOSPC$/);
  assert.ok(
    out.lines.every((line) => !line.includes('\u001b')),
    'NO_COLOR: no escape sequences',
  );
});

test('colours on a terminal without NO_COLOR, never when NO_COLOR is set or the stream is no terminal', async () => {
  assert.equal(useColor({ isTTY: true }, {}), true);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColor({ isTTY: false }, {}), false);
  const out = sink(true);
  const log = pinoFrom(loggerOptions({ level: 'info', stream: out, env: {} }));
  log.error('red');
  await settle();
  assert.match(out.lines[0]!, /\u001b\[31mERROR\u001b\[0m red$/);
});

test('what a client sent cannot drive the terminal: control characters are escaped', () => {
  const hostile = JSON.stringify({
    level: 30,
    time: 0,
    msg: 'x\u001b[2Jy',
    req: { method: 'GET', url: '/a\u001b]0;pwned\u0007' },
    host: 'h\u009b31m',
  });
  const line = formatLine(hostile);
  assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f]/, line);
  assert.match(line, /x\\x1b\[2Jy GET \/a\\x1b\]0;pwned\\x07 host=h\\x9b31m$/);
  assert.equal(formatLine('not json \u001b'), 'not json \\x1b', 'a line that is not JSON is kept (escaped)');
});

test('long values are cut saying how much was left out, never dropped', () => {
  const line = formatLine(JSON.stringify({ level: 30, time: 0, msg: 'm', blob: 'x'.repeat(1000) }));
  assert.match(line, / blob=x{300}…\(700 more chars\)$/);
});

test('JSON mode (no terminal) is pino output unchanged', async () => {
  const plain = sink(false);
  const ours = sink(false);
  const fixed = { timestamp: () => ',"time":1700000000000', base: { pid: 1, hostname: 'h' } };
  const reference = pino({ level: 'info', ...fixed }, plain);
  const options = loggerOptions({ level: 'info', stream: ours, env: {} });
  assert.equal(options.stream, ours, 'the stream itself, not a wrapper');
  const logger = pinoFrom(options, fixed);
  for (const log of [reference, logger]) {
    log.info({ req: { method: 'GET', url: '/x' } }, 'one');
    log.warn({ n: 2 }, 'two');
    log.debug('not at info');
  }
  await settle();
  assert.equal(ours.lines.length, 2);
  assert.deepEqual(ours.lines, plain.lines);
  assert.deepEqual(JSON.parse(ours.lines[1]!), {
    level: 40,
    time: 1700000000000,
    pid: 1,
    hostname: 'h',
    n: 2,
    msg: 'two',
  });
});

test('KVMFLEET_LOG_FORMAT overrides the guess; anything else is refused by name', () => {
  assert.equal(logFormat({ isTTY: true }, {}), 'text');
  assert.equal(logFormat({ isTTY: false }, {}), 'json');
  assert.equal(logFormat({ isTTY: true }, { KVMFLEET_LOG_FORMAT: 'json' }), 'json');
  assert.equal(logFormat({ isTTY: false }, { KVMFLEET_LOG_FORMAT: 'text' }), 'text');
  assert.throws(() => logFormat({}, { KVMFLEET_LOG_FORMAT: 'pretty' }), {
    code: 'KVMF_ERR_VALIDATION',
    message: 'KVMFLEET_LOG_FORMAT must be json or text, not "pretty"',
  });
  const forced = sink(false);
  assert.ok(
    loggerOptions({ level: 'info', stream: forced, env: { KVMFLEET_LOG_FORMAT: 'text' } }).stream instanceof
      TerminalLogStream,
  );
});

test('a record split across writes is still one line', async () => {
  const out = sink(true);
  const stream = new TerminalLogStream(out);
  const record = JSON.stringify({ level: 30, time: 0, msg: 'split here' });
  stream.write(record.slice(0, 10));
  stream.write(`${record.slice(10)}\n${record}`);
  await new Promise<void>((resolve) => stream.end(resolve));
  await settle();
  assert.deepEqual(
    out.lines.map((l) => l.replace(TIME, '')),
    ['INFO  split here', 'INFO  split here'],
  );
});

test('a terminal that lags is waited for (drain) before the next record is formatted', async () => {
  const out = new PassThrough({ highWaterMark: 16 }); // nobody reads it yet
  const stream = new TerminalLogStream(out);
  const record = `${JSON.stringify({ level: 30, time: 0, msg: 'waiting' })}\n`;
  for (let i = 0; i < 3; i++) stream.write(record);
  await settle();
  assert.ok(out.readableLength > 0 && out.readableLength < 3 * 20, `one line went out (${out.readableLength} bytes)`);
  // The first is counted until the terminal drains; the other two have not been formatted yet.
  assert.equal(stream.writableLength, 3 * record.length, 'the writer holds them until the terminal drains');
  stream.write(record);
  const received: string[] = [];
  out.on('data', (chunk: Buffer) => received.push(chunk.toString()));
  await new Promise<void>((resolve) => stream.end(resolve));
  assert.equal(received.join('').split('\n').filter(Boolean).length, 4, 'all four once the terminal reads');
});

// The boot HTTP role with its redacting serializer, logging in text: a token stays out of the terminal too.
let store: Store;
let app: FastifyInstance;
let port: number;
const terminal = sink(true);

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    store.db,
    'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 127.79.0.0/24 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://boot.lab/trees/rhel9" }\n',
  );
  await importHostsCsv(
    store.db,
    'hostname,mac,ip,network,profile\nh1.lab,52:54:00:79:00:10,127.79.0.10,lab-hv,rhel9\n',
  );
  app = await buildBootHttp({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    logger: loggerOptions({ level: 'debug', stream: terminal, env: { NO_COLOR: '1' } }), // request lines are at debug
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
after(async () => {
  await app.close();
  await store.close();
});

test('the boot role in text mode: the redacting serializer still runs, so no build token is shown', async () => {
  const send = (method: string, target: string) =>
    rawRequest(port, { method, target, localAddress: '127.79.0.10', headers: { host: 'boot.lab' } });
  const script = await send('GET', '/boot/52-54-00-79-00-10?platform=pcbios');
  const token = /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(script.body)?.[1];
  assert.ok(token, script.body);
  assert.equal((await send('GET', `/boot/ks/${token}`)).status, 200);
  assert.equal((await send('GET', `/boot/files/${token}/kernel`)).status, 302);
  await new Promise((r) => setTimeout(r, 100)); // pino writes asynchronously
  const leaks = terminal.lines.filter((line) => line.includes(token));
  assert.deepEqual(leaks, [], 'no line holds the token');
  for (const url of ['/boot/ks/[redacted]', '/boot/files/[redacted]/kernel'])
    assert.ok(
      terminal.lines.some((line) => / DEBUG request completed GET /.test(line) && line.includes(` GET ${url} → `)),
      `${url} in:\n${terminal.lines.join('\n')}`,
    );
  assert.ok(terminal.lines.some((line) => / request completed GET \S+ → 302 in [\d.]+ ms .*reqId=req-\w+$/.test(line)));
  for (const line of terminal.lines) assert.match(line, TIME, 'readable lines, not JSON');
});
