/**
 * Redfish resource parsing of untrusted JSON: DMTF's public-rackmount1 mockup shapes are read,
 * links that leave the service are refused, missing or mistyped properties are protocol errors,
 * unknown enum values in AllowableValues are dropped, and error answers are bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedfishError } from '../../../src/protocols/redfish/errors.ts';
import {
  odataPath,
  parseCollection,
  parseComputerSystem,
  parseErrorAnswer,
  parseJson,
  parseServiceRoot,
} from '../../../src/protocols/redfish/resources.ts';

const kind = (k: string) => (e: unknown) => e instanceof RedfishError && e.kind === k;
const SYSTEM = '/redfish/v1/Systems/437XR1138R2';

describe('Redfish resources', () => {
  it('service root: Systems, Links.Sessions and the version (the mockup root, trimmed)', () => {
    assert.deepEqual(
      parseServiceRoot({
        '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
        RedfishVersion: '1.15.0',
        Systems: { '@odata.id': '/redfish/v1/Systems' },
        SessionService: { '@odata.id': '/redfish/v1/SessionService' },
        Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
        Oem: {},
      }),
      {
        systems: '/redfish/v1/Systems',
        sessions: '/redfish/v1/SessionService/Sessions',
        sessionService: '/redfish/v1/SessionService',
        redfishVersion: '1.15.0',
      },
    );
    assert.throws(() => parseServiceRoot({ Chassis: { '@odata.id': '/redfish/v1/Chassis' } }), kind('unsupported'));
    assert.throws(() => parseServiceRoot([]), kind('protocol'));
    assert.throws(() => parseServiceRoot({ Systems: '/redfish/v1/Systems' }), kind('protocol'));
  });

  it('links stay on the service: no other host, no dot segments, nothing outside /redfish/v1, bounded', () => {
    assert.equal(odataPath('/redfish/v1/Systems/1', 'x'), '/redfish/v1/Systems/1');
    for (const bad of [
      'https://evil.example/redfish/v1/Systems',
      '//evil.example/redfish/v1',
      '/redfish/v1/../../etc',
      '/redfish/v1/Systems/./1',
      '/other/v1',
      '/redfish/v1/Systems 1',
      '/redfish/v1/' + 'a'.repeat(600),
      42,
      null,
    ])
      assert.throws(() => odataPath(bad, 'x'), kind('protocol'), String(bad));
  });

  it("ComputerSystem: PowerState, the Reset action's target and AllowableValues, Boot (the mockup's system)", () => {
    const system = parseComputerSystem(
      {
        '@odata.id': SYSTEM,
        PowerState: 'On',
        Boot: {
          BootSourceOverrideEnabled: 'Once',
          BootSourceOverrideTarget: 'Pxe',
          'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Cd', 'Hdd', 'SomeFutureTarget', 7],
          BootSourceOverrideMode: 'UEFI',
        },
        Actions: {
          '#ComputerSystem.Reset': {
            target: `${SYSTEM}/Actions/ComputerSystem.Reset`,
            'ResetType@Redfish.AllowableValues': ['On', 'ForceOff', 'GracefulShutdown', 'Nmi', 'NotAResetType'],
          },
          Oem: { '#Contoso.Reset': { target: `${SYSTEM}/Oem/Contoso/Actions/Contoso.Reset` } },
        },
      },
      SYSTEM,
    );
    assert.deepEqual(system, {
      path: SYSTEM,
      powerState: 'On',
      reset: {
        target: `${SYSTEM}/Actions/ComputerSystem.Reset`,
        allowable: ['On', 'ForceOff', 'GracefulShutdown', 'Nmi'],
      },
      boot: { hasMode: true, targets: ['None', 'Pxe', 'Cd', 'Hdd'] },
    });
    assert.deepEqual(parseComputerSystem({ PowerState: 'Off' }, SYSTEM), { path: SYSTEM, powerState: 'Off' });
    for (const bad of [
      {},
      { PowerState: 'Sideways' },
      { PowerState: 'On', Actions: { '#ComputerSystem.Reset': { target: 'https://elsewhere/reset' } } },
      { PowerState: 'On', Boot: { 'BootSourceOverrideTarget@Redfish.AllowableValues': 'Pxe' } },
      { PowerState: 'On', Boot: [] },
    ])
      assert.throws(() => parseComputerSystem(bad, SYSTEM), kind('protocol'), JSON.stringify(bad));
  });

  it('collections: member paths, bounded; JSON that does not parse is a protocol error', () => {
    assert.deepEqual(parseCollection({ Members: [{ '@odata.id': SYSTEM }], 'Members@odata.count': 1 }, 'Systems'), [
      SYSTEM,
    ]);
    assert.throws(() => parseCollection({ Members: {} }, 'Systems'), kind('protocol'));
    assert.throws(
      () => parseCollection({ Members: Array.from({ length: 2000 }, () => ({ '@odata.id': SYSTEM })) }, 'Systems'),
      kind('protocol'),
    );
    assert.throws(() => parseJson(Buffer.from('{"a":'), 'x'), kind('protocol'));
    assert.throws(() => parseJson(Buffer.alloc(0), 'x'), kind('protocol'));
  });

  it('error answers: the first MessageId and message, control characters out, bounded; junk gives nothing', () => {
    assert.deepEqual(
      parseErrorAnswer(
        Buffer.from(
          JSON.stringify({
            error: {
              code: 'Base.1.8.GeneralError',
              message: 'general',
              '@Message.ExtendedInfo': [
                { MessageId: 'Base.1.8.PropertyUnknown', Message: `bad\r\nline${'x'.repeat(300)}` },
              ],
            },
          }),
        ),
      ),
      { messageId: 'Base.1.8.PropertyUnknown', message: `bad  line${'x'.repeat(191)}` },
    );
    assert.deepEqual(parseErrorAnswer(Buffer.from('<html>')), {});
    assert.deepEqual(parseErrorAnswer(Buffer.from('{"error":{"code":"Oops"}}')), { messageId: 'Oops' });
  });
});
