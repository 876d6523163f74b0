/**
 * kvmfleet's libvirt RPC numbers against libvirt's own protocol definitions: remote_protocol.x and
 * virkeepaliveprotocol.x from the Debian source package of the installed libvirt
 * (scripts/fetch-libvirt-protocol.sh, run by .ci/run). A wrong number would call another procedure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import {
  KeepaliveProcedure,
  MEMORY_PEEK_MAX,
  Procedure,
  RemoteAuth,
  RemoteLimit,
} from '../../../src/protocols/libvirt/procedures.ts';
import {
  KEEPALIVE_PROGRAM,
  KEEPALIVE_PROTOCOL_VERSION,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
} from '../../../src/protocols/libvirt/packet.ts';

const dir = new URL('../../../.cache/libvirt-protocol/', import.meta.url);

function definitions(file: string): Map<string, number> {
  const path = new URL(file, dir);
  assert.ok(
    existsSync(path),
    `${path.pathname} is missing: run scripts/fetch-libvirt-protocol.sh (it fetches libvirt's Debian sources)`,
  );
  const out = new Map<string, number>();
  // `const NAME = 0x…;` and enum members `NAME = 12,` (the last without a comma).
  for (const m of readFileSync(path, 'utf8').matchAll(
    /^\s*(?:const\s+)?([A-Z][A-Z0-9_]*)\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*[,;]?\s*(?:\/\*.*\*\/)?\s*$/gm,
  )) {
    out.set(m[1]!, Number(m[2]!));
  }
  return out;
}

/** `StorageVolCreateXmlFrom` → `STORAGE_VOL_CREATE_XML_FROM` */
const upperSnake = (name: string) => name.replace(/(?<=[a-z0-9])(?=[A-Z])/g, '_').toUpperCase();

/** The numeric members of a TypeScript enum (its reverse mappings left out). */
const members = (e: Record<string, string | number>) =>
  Object.entries(e).filter((entry): entry is [string, number] => typeof entry[1] === 'number');

test('every procedure number is the one remote_protocol.x gives that name', () => {
  const remote = definitions('remote_protocol.x');
  const procedures = members(Procedure);
  assert.ok(procedures.length > 30);
  for (const [name, value] of procedures) {
    const theirs = `REMOTE_PROC_${upperSnake(name)}`;
    assert.equal(
      remote.get(theirs),
      value,
      `Procedure.${name} = ${value}, but remote_protocol.x has ${theirs} = ${remote.get(theirs)}`,
    );
  }
});

test('the procedure table is sorted by number and has no duplicates', () => {
  const values = members(Procedure).map(([, v]) => v);
  assert.deepEqual(
    values,
    [...new Set(values)].sort((a, b) => a - b),
  );
});

test('program numbers, versions, auth types and list limits agree with the .x files', () => {
  const remote = definitions('remote_protocol.x');
  const keepalive = definitions('virkeepaliveprotocol.x');
  assert.equal(REMOTE_PROGRAM, remote.get('REMOTE_PROGRAM'));
  assert.equal(REMOTE_PROTOCOL_VERSION, remote.get('REMOTE_PROTOCOL_VERSION'));
  assert.equal(KEEPALIVE_PROGRAM, keepalive.get('KEEPALIVE_PROGRAM'));
  assert.equal(KEEPALIVE_PROTOCOL_VERSION, keepalive.get('KEEPALIVE_PROTOCOL_VERSION'));
  for (const [name, value] of members(KeepaliveProcedure))
    assert.equal(keepalive.get(`KEEPALIVE_PROC_${upperSnake(name)}`), value, name);
  for (const [name, value] of members(RemoteAuth))
    assert.equal(remote.get(`REMOTE_AUTH_${upperSnake(name)}`), value, name);
  assert.equal(RemoteLimit.DomainList, remote.get('REMOTE_DOMAIN_LIST_MAX'));
  assert.equal(RemoteLimit.AuthTypeList, remote.get('REMOTE_AUTH_TYPE_LIST_MAX'));
  assert.ok(
    MEMORY_PEEK_MAX <= remote.get('REMOTE_DOMAIN_MEMORY_PEEK_BUFFER_MAX')!,
    'a memory peek larger than the protocol allows',
  );
});
