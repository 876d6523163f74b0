/**
 * The boot roles' summary: a storm of events is one info line per interval, each event a debug
 * line only when debug is on. A real pino logger into a PassThrough; the clock and the interval
 * timer are test doubles driven by the test, so nothing sleeps.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { BootSummary, type SummaryTimers } from '../../src/logging/boot-summary.ts';
import { bootHttpKind, dhcpTypeName, groupDigits, tftpKind } from '../../src/logging/index.ts';

/** A test double of the interval timer: the test fires it. */
function fakeTimers() {
  const state = { callback: undefined as (() => void) | undefined, ms: 0, cleared: false };
  const timers: SummaryTimers = {
    setInterval(callback, ms) {
      state.callback = callback;
      state.ms = ms;
      return 1;
    },
    clearInterval() {
      state.cleared = true;
    },
  };
  return { timers, state, fire: () => state.callback?.() };
}

function capture(level: string) {
  const stream = new PassThrough();
  const records: { level: number; msg: string; [key: string]: unknown }[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) records.push(JSON.parse(line));
  });
  return { log: pino({ level }, stream), records };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

function storm(summary: BootSummary) {
  for (let i = 0; i < 1000; i++) {
    const kind = i < 400 ? 'script' : i < 800 ? 'kickstart' : 'kernel';
    const status = i % 500 === 0 ? 404 : kind === 'kernel' ? 302 : 200;
    summary.record({ kind, status, fields: { url: `/boot/${i}` } });
  }
}

test('1 000 requests at info: nothing until the interval, then one line with the counts', async () => {
  const { log, records } = capture('info');
  const { timers, state, fire } = fakeTimers();
  let now = 1_000_000;
  const summary = new BootSummary({ label: 'boot http', noun: 'request', log, timers, now: () => now });
  assert.equal(state.ms, 60_000, 'default interval');
  storm(summary);
  await settle();
  assert.equal(records.length, 0, 'no line per request at info');

  now += 60_000;
  fire();
  await settle();
  assert.equal(records.length, 1);
  const [line] = records;
  assert.equal(line!.level, 30);
  assert.equal(line!.msg, 'boot http: 1 000 requests (script 400, kickstart 400, kernel 200; 2 × 404) in 60 s');
  assert.deepEqual(
    { total: line!.total, seconds: line!.seconds, byKind: line!.byKind, byStatus: line!.byStatus },
    {
      total: 1000,
      seconds: 60,
      byKind: { script: 400, kickstart: 400, kernel: 200 },
      byStatus: { 200: 798, 302: 200, 404: 2 },
    },
  );

  now += 60_000;
  fire();
  await settle();
  assert.equal(records.length, 1, 'a quiet interval logs nothing');
  summary.record({ kind: 'script', status: 200 });
  now += 5_000;
  summary.stop();
  await settle();
  assert.equal(state.cleared, true);
  assert.equal(records.at(-1)!.msg, 'boot http: 1 request (script 1) in 5 s', 'stop() logs what is left');
});

test('at debug every event is a line of its own, with its fields', async () => {
  const { log, records } = capture('debug');
  const { timers } = fakeTimers();
  const summary = new BootSummary({ label: 'boot http', noun: 'request', log, timers });
  storm(summary);
  await settle();
  assert.equal(records.length, 1000);
  assert.ok(records.every((r) => r.level === 20));
  assert.deepEqual(records[0], {
    ...records[0],
    kind: 'script',
    status: 404,
    url: '/boot/0',
    msg: 'boot http script 404',
  });
});

test('TFTP and DHCP words: outcomes other than completed are named; open-ended kinds are bounded', async () => {
  const { log, records } = capture('info');
  const { timers, fire } = fakeTimers();
  let now = 0;
  const tftp = new BootSummary({ label: 'tftp', noun: 'transfer', log, timers, now: () => now, maxKeys: 3 });
  for (const [kind, status] of [
    ['undionly.kpxe', 'completed'],
    ['undionly.kpxe', 'completed'],
    ['ipxe.efi', 'timeout'],
    ['a', 'completed'],
    ['b', 'refused'],
    ['c', 'completed'],
  ] as const)
    tftp.record({ kind, status });
  now = 2_400;
  fire();
  await settle();
  assert.equal(
    records[0]!.msg,
    'tftp: 6 transfers (undionly.kpxe 2, other 2, ipxe.efi 1, a 1; 1 × timeout, 1 × refused) in 2 s',
  );
});

test('the summary kinds come from fixed tables', () => {
  assert.equal(bootHttpKind('/boot/:mac'), 'script');
  assert.equal(bootHttpKind('/boot/uuid/:uuid'), 'script');
  assert.equal(bootHttpKind('/boot/ks/:token'), 'kickstart');
  assert.equal(bootHttpKind('/boot/files/:token/:which', { which: 'initrd' }), 'initrd');
  assert.equal(bootHttpKind('/boot/files/:token/:which', { which: 'etc-shadow' }), 'other');
  assert.equal(bootHttpKind('/boot/built/:token'), 'callback');
  assert.equal(bootHttpKind('/ipxe.efi'), 'firmware');
  assert.equal(bootHttpKind('/undionly.kpxe'), 'firmware');
  assert.equal(bootHttpKind('/trees/*'), 'tree');
  assert.equal(bootHttpKind(undefined), 'unmatched');
  assert.equal(bootHttpKind('/api/v1/hosts'), 'other');
  assert.deepEqual([1, 3, 5, 6, 0, 9, undefined].map(dhcpTypeName), [
    'discover',
    'request',
    'ack',
    'nak',
    'unknown',
    'unknown',
    'unknown',
  ]);
  assert.equal(tftpKind('/pxelinux/undionly.kpxe', ['undionly.kpxe', 'ipxe.efi']), 'undionly.kpxe');
  assert.equal(tftpKind('../../etc/passwd', ['undionly.kpxe']), 'other');
  assert.deepEqual([0, 999, 1000, 1234567].map(groupDigits), ['0', '999', '1 000', '1 234 567']);
});
