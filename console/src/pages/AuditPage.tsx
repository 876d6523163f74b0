/** The audit log (admins): every mutating API call, allowed or refused — who, what, when, result. */
import { useState } from 'react';
import { api } from '../api.ts';
import type { AuditEntry } from '../types.ts';
import { ErrorNote, Section, Time, useLoad } from '../ui.tsx';

export function AuditPage() {
  const [actor, setActor] = useState('');
  const audit = useLoad(
    () =>
      api<AuditEntry[]>(
        'GET',
        `/api/v1/audit?limit=500${actor.trim() ? `&actor=${encodeURIComponent(actor.trim())}` : ''}`,
      ),
    [actor],
  );
  return (
    <Section
      title="Audit log"
      actions={
        <button type="button" onClick={audit.reload}>
          Reload
        </button>
      }
    >
      <div className="filters">
        <label>
          Actor
          <input type="search" value={actor} onChange={(e) => setActor(e.target.value)} placeholder="user name" />
        </label>
      </div>
      <ErrorNote error={audit.error} />
      <table className="audit">
        <thead>
          <tr>
            <th>At</th>
            <th>Actor</th>
            <th>Action</th>
            <th>Target</th>
            <th>Result</th>
          </tr>
        </thead>
        <tbody>
          {(audit.data ?? []).map((e, i) => (
            <tr key={`${e.at}-${i}`} data-action={e.action}>
              <td>
                <Time at={e.at} />
              </td>
              <td>{e.actor}</td>
              <td className="mono">{e.action}</td>
              <td>{e.target}</td>
              <td className={Number(e.result) >= 400 ? 'error-text' : undefined}>{e.result}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
