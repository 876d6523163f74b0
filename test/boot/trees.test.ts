/**
 * Install trees (boot/trees.ts, boot/tree-ranges.ts): which paths are refused, what a request's
 * validators and Range header are answered with, the chunk budget, and the bytes over a real
 * socket — files larger than a chunk, ranges across chunk boundaries, HEAD, types, symlinks that
 * stay in the tree or leave it, and a client that goes away mid-file (its file is closed).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { treeAnswer, treeEtag } from '../../src/boot/tree-ranges.ts';
import { chunking, registerTrees, treePath } from '../../src/boot/trees.ts';

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'kvt-trees-'));
const root = join(work, 'trees');
const big = randomBytes(5 * MiB + 3);
let app: FastifyInstance;
let port = 0;
const responses: number[] = [];

before(async () => {
  mkdirSync(join(root, 'rhel9', 'images', 'pxeboot'), { recursive: true });
  mkdirSync(join(work, 'elsewhere'));
  writeFileSync(join(root, 'rhel9', 'images', 'pxeboot', 'initrd.img'), big);
  writeFileSync(join(root, 'rhel9', 'repomd.xml'), '<repomd/>\n');
  writeFileSync(join(root, 'rhel9', 'notes.txt'), 'notes\n');
  writeFileSync(join(root, 'rhel9', 'empty'), '');
  writeFileSync(join(root, 'rhel9', '.treeinfo-secret'), 'dot\n');
  writeFileSync(join(work, 'outside.txt'), 'outside-the-tree\n');
  writeFileSync(join(work, 'elsewhere', 'x'), 'outside-the-tree\n');
  symlinkSync(join(root, 'rhel9', 'notes.txt'), join(root, 'rhel9', 'inside-link'));
  symlinkSync(join(work, 'outside.txt'), join(root, 'rhel9', 'outside-link'));
  symlinkSync(join(work, 'elsewhere'), join(root, 'rhel9', 'outside-dir'));
  utimesSync(join(root, 'rhel9', 'notes.txt'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
  app = Fastify();
  app.addHook('onResponse', async (_request, reply) => {
    responses.push(reply.statusCode);
  });
  await registerTrees(app, { root, prefix: '/trees/' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
after(async () => {
  await app?.close();
  rmSync(work, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('paths: NUL and bad escapes 400, dot parts (encoded or not) 403, directories 404', () => {
  assert.deepEqual(treePath('rhel9/images/pxeboot/initrd.img'), { ok: true, path: 'rhel9/images/pxeboot/initrd.img' });
  assert.deepEqual(treePath('rhel9//images'), { ok: true, path: 'rhel9/images' });
  for (const bad of ['a%00b', '%E0%A4%A', 'x%']) assert.deepEqual(treePath(bad), { ok: false, status: 400 }, bad);
  for (const dotted of ['..', '../etc/passwd', '%2e%2e/x', 'rhel9/..%2f..%2fetc', '.hidden', 'a/.git/config', 'a/./b'])
    assert.deepEqual(treePath(dotted), { ok: false, status: 403 }, dotted);
  for (const dir of ['', 'rhel9/', '/']) assert.deepEqual(treePath(dir), { ok: false, status: 404 }, dir);
});

test('chunks: two of 1 MiB for a few responses, halved as more stream, one of 64 KiB down to 16 KiB in a storm', () => {
  assert.deepEqual(chunking(0), { size: MiB, buffers: 2 });
  assert.deepEqual(chunking(7), { size: MiB, buffers: 2 });
  assert.deepEqual(chunking(8), { size: MiB / 2, buffers: 2 });
  assert.deepEqual(chunking(127), { size: 64 * 1024, buffers: 2 });
  assert.deepEqual(chunking(128), { size: 64 * 1024, buffers: 1 });
  assert.deepEqual(chunking(255), { size: 64 * 1024, buffers: 1 });
  assert.deepEqual(chunking(500), { size: 32 * 1024, buffers: 1 });
  assert.deepEqual(chunking(100_000), { size: 16 * 1024, buffers: 1 });
  assert.deepEqual(chunking(0, 64 * 1024), { size: 64 * 1024, buffers: 1 });
});

test('answers: validators, preconditions, ranges and If-Range', () => {
  const file = { size: 1000, mtimeMs: Date.parse('2026-01-02T03:04:05.678Z') };
  const etag = treeEtag(file);
  assert.equal(etag, `W/"3e8-${file.mtimeMs.toString(16)}"`);
  const lastModified = 'Fri, 02 Jan 2026 03:04:05 GMT';
  const whole = treeAnswer({}, file);
  assert.deepEqual(whole, {
    status: 200,
    start: 0,
    length: 1000,
    headers: { etag, 'last-modified': lastModified, 'accept-ranges': 'bytes' },
  });
  assert.equal(treeAnswer({ 'if-none-match': etag }, file).status, 304);
  assert.equal(treeAnswer({ 'if-none-match': `"other", ${etag.slice(2)}` }, file).status, 304, 'weak comparison');
  assert.equal(treeAnswer({ 'if-none-match': '*' }, file).status, 304);
  assert.equal(
    treeAnswer({ 'if-none-match': '"other"', 'if-modified-since': lastModified }, file).status,
    200,
    'If-None-Match decides, If-Modified-Since is ignored',
  );
  assert.equal(treeAnswer({ 'if-modified-since': lastModified }, file).status, 304);
  assert.equal(treeAnswer({ 'if-modified-since': 'Fri, 02 Jan 2026 03:04:04 GMT' }, file).status, 200);
  assert.equal(treeAnswer({ 'if-none-match': etag, 'cache-control': 'no-cache' }, file).status, 200);
  assert.equal(treeAnswer({ 'if-match': '"other"' }, file).status, 412);
  assert.equal(treeAnswer({ 'if-match': etag }, file).status, 200);
  assert.equal(treeAnswer({ 'if-unmodified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' }, file).status, 412);

  const range = treeAnswer({ range: 'bytes=100-199' }, file);
  assert.equal(range.status, 206);
  assert.ok('start' in range);
  assert.equal(range.start, 100);
  assert.equal(range.length, 100);
  assert.equal(range.headers['content-range'], 'bytes 100-199/1000');
  const suffix = treeAnswer({ range: 'bytes=-5000' }, file);
  assert.ok('start' in suffix && suffix.start === 0 && suffix.length === 1000 && suffix.status === 206);
  assert.deepEqual(treeAnswer({ range: 'bytes=1000-' }, file), {
    status: 416,
    headers: { 'accept-ranges': 'bytes', 'content-range': 'bytes */1000' },
  });
  assert.equal(treeAnswer({ range: 'bytes=0-0' }, { size: 0, mtimeMs: 0 }).status, 416);
  for (const ignored of ['bytes=0-1,5-6', 'bytes=0-0-0', 'bytes=5-1', 'items=0-1'])
    assert.equal(treeAnswer({ range: ignored }, file).status, 200, ignored);
  assert.equal(treeAnswer({ range: 'bytes=0-9', 'if-range': etag }, file).status, 206);
  assert.equal(treeAnswer({ range: 'bytes=0-9', 'if-range': '"changed"' }, file).status, 200);
  assert.equal(treeAnswer({ range: 'bytes=0-9', 'if-range': lastModified }, file).status, 206);
  assert.equal(treeAnswer({ range: 'bytes=0-9', 'if-range': 'Thu, 01 Jan 2026 00:00:00 GMT' }, file).status, 200);
  assert.equal(treeAnswer({ range: 'bytes=5000-', 'if-range': '"changed"' }, file).status, 200, 'stale: whole file');
});

test('bytes over a socket: whole, ranges across chunks, HEAD, types, conditional', async () => {
  const url = '/trees/rhel9/images/pxeboot/initrd.img';
  const whole = await get(url);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['content-length'], String(big.length));
  assert.equal(whole.headers['content-type'], 'application/octet-stream');
  assert.equal(whole.headers['accept-ranges'], 'bytes');
  assert.ok(whole.body.equals(big), 'the file as written');
  assert.equal(responses.at(-1), 200, "Fastify's onResponse hooks (the boot summary) still see the answer");
  for (const [first, last] of [
    [MiB - 10, MiB + 10],
    [0, 0],
    [big.length - 1, big.length - 1],
    [3, 4 * MiB + 1],
  ] as const) {
    const part = await get(url, { range: `bytes=${first}-${last}` });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes ${first}-${last}/${big.length}`);
    assert.ok(part.body.equals(big.subarray(first, last + 1)), `bytes ${first}-${last}`);
  }
  const head = await get(url, {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(big.length));
  assert.equal(head.body.length, 0);
  const revalidated = await get(url, { 'if-none-match': String(whole.headers.etag) });
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.body.length, 0);
  const beyond = await get(url, { range: `bytes=${big.length}-` });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers['content-range'], `bytes */${big.length}`);

  const notes = await get('/trees/rhel9/notes.txt?cache-buster=1');
  assert.equal(notes.status, 200);
  assert.equal(notes.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(notes.headers['last-modified'], 'Fri, 02 Jan 2026 03:04:05 GMT');
  assert.equal(notes.body.toString(), 'notes\n');
  assert.equal(
    (await get('/trees/rhel9/notes.txt', { 'if-modified-since': 'Fri, 02 Jan 2026 03:04:05 GMT' })).status,
    304,
  );
  assert.equal((await get('/trees/rhel9/repomd.xml')).headers['content-type'], 'application/xml');
  const empty = await get('/trees/rhel9/empty');
  assert.equal(empty.status, 200);
  assert.equal(empty.headers['content-length'], '0');
});

test('refused: dotfiles, climbing out, symlinks that leave the tree, directories, missing files', async () => {
  assert.equal(
    (await get('/trees/rhel9/inside-link')).body.toString(),
    'notes\n',
    'a symlink inside the tree is served',
  );
  for (const [path, status] of [
    ['/trees/rhel9/outside-link', 403],
    ['/trees/rhel9/outside-dir/x', 403],
    ['/trees/rhel9/.treeinfo-secret', 403],
    ['/trees/../outside.txt', 403],
    ['/trees/%2e%2e/outside.txt', 403],
    ['/trees/rhel9/..%2f..%2foutside.txt', 403],
    ['/trees/rhel9/%00', 400],
    ['/trees/rhel9', 404],
    ['/trees/rhel9/', 404],
    ['/trees/rhel9/images', 404],
    ['/trees/rhel9/missing.img', 404],
  ] as const) {
    const answer = await get(path);
    assert.equal(answer.status, status, path);
    assert.ok(!answer.body.toString().includes('outside-the-tree'), `${path} leaked a file outside the tree`);
    assert.ok(!answer.body.toString().includes('dot'), `${path} served the dotfile`);
  }
});

test('past the budget (one buffer per response): the same bytes, whole and by range', async () => {
  const small = Fastify();
  await registerTrees(small, { root, prefix: '/trees/', readBudget: 64 * 1024 });
  await small.listen({ host: '127.0.0.1', port: 0 });
  const mainPort = port;
  port = (small.server.address() as { port: number }).port;
  try {
    const whole = await get('/trees/rhel9/images/pxeboot/initrd.img');
    assert.ok(whole.body.equals(big));
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        get('/trees/rhel9/images/pxeboot/initrd.img', { range: `bytes=${i * 1000}-${MiB + 77_777 * i}` }),
      ),
    );
    answers.forEach((answer, i) => {
      assert.equal(answer.status, 206);
      assert.ok(answer.body.equals(big.subarray(i * 1000, MiB + 77_777 * i + 1)), `client ${i}`);
    });
  } finally {
    port = mainPort;
    await small.close();
  }
});

test('a client that goes away mid-file: the file is closed and the next client served', async () => {
  const fds = () => readdirSync('/proc/self/fd').length;
  const before = fds();
  for (let i = 0; i < 5; i++)
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/trees/rhel9/images/pxeboot/initrd.img', agent: false },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve() : reject(error)));
      req.end();
    });
  let now = fds();
  for (let waited = 0; now > before && waited < 5000; waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
    now = fds();
  }
  assert.ok(now <= before, `file descriptors: ${before} before, ${now} after the aborted fetches`);
  const next = await get('/trees/rhel9/images/pxeboot/initrd.img');
  assert.ok(next.body.equals(big));
});
