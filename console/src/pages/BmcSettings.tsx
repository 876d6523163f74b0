/**
 * The host page's BMC section: where the host's BMC is and who logs in (everyone with read), and for
 * operators a form to set it. The password field is write-only: the API never answers a password.
 */
import { useEffect, useState } from 'react';
import { api, enc } from '../api.ts';
import { BMC_TYPES, bmcBody, fieldsFrom, fieldsProblem, saveBmc, type BmcFields, type BmcView } from '../bmc.ts';
import { ActionButton, ErrorNote, Section, useLoad } from '../ui.tsx';

export function BmcSettings({
  hostname,
  canWrite,
  onSaved,
}: {
  hostname: string;
  canWrite: boolean;
  onSaved: () => void;
}) {
  const bmc = useLoad(() => api<BmcView | null>('GET', `/api/v1/hosts/${enc(hostname)}/bmc`), [hostname]);
  const [fields, setFields] = useState<BmcFields>(fieldsFrom(null));
  useEffect(() => setFields(fieldsFrom(bmc.data ?? null)), [bmc.data]);
  const set = <K extends keyof BmcFields>(key: K, value: BmcFields[K]) => setFields((f) => ({ ...f, [key]: value }));
  const problem = fieldsProblem(fields);
  const view = bmc.data;
  return (
    <Section title="BMC">
      <ErrorNote error={bmc.error} />
      <p className="bmc-summary">
        {view
          ? `${view.type} at ${view.address}, user ${view.username ?? '—'}${view.credentials ? `, credentials set ${view.credentials}` : ''}; password ${view.passwordSet ? 'set' : 'not set'}${view.insecure ? '; certificate not checked' : ''}`
          : 'no BMC'}
      </p>
      {canWrite && (
        <form className="inline-form bmc-form" onSubmit={(e) => e.preventDefault()}>
          <label>
            Type
            <select
              name="bmc-type"
              value={fields.type}
              onChange={(e) => set('type', e.target.value as BmcFields['type'])}
            >
              {BMC_TYPES.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </label>
          <label>
            Address
            <input
              name="bmc-address"
              placeholder="10.1.9.20 or host:port"
              value={fields.address}
              onChange={(e) => set('address', e.target.value)}
            />
          </label>
          <label>
            User
            <input
              name="bmc-user"
              autoComplete="off"
              value={fields.username}
              onChange={(e) => set('username', e.target.value)}
            />
          </label>
          <label>
            Password {view?.passwordSet ? '(empty: keep)' : ''}
            <input
              name="bmc-password"
              type="password"
              autoComplete="new-password"
              value={fields.password}
              onChange={(e) => set('password', e.target.value)}
            />
          </label>
          <label>
            Credentials set
            <input
              name="bmc-credentials"
              autoComplete="off"
              placeholder="none"
              value={fields.credentials}
              onChange={(e) => set('credentials', e.target.value)}
            />
          </label>
          {fields.type === 'redfish' && (
            <label>
              <input type="checkbox" checked={fields.insecure} onChange={(e) => set('insecure', e.target.checked)} />
              Do not check its certificate
            </label>
          )}
          <ActionButton
            label="Save BMC"
            disabled={problem !== undefined}
            title={problem ?? `PUT ${Object.keys(bmcBody(fields)).join(', ')}`}
            action={async () => {
              await saveBmc(hostname, fields);
              bmc.reload();
              onSaved();
            }}
          />
        </form>
      )}
    </Section>
  );
}
