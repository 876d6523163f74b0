/**
 * Access: API tokens (yours; an admin sees everyone's) — create one scoped to less than your role,
 * shown once, or revoke one — and, for admins, users and their roles.
 */
import { useContext, useState } from 'react';
import { api, enc } from '../api.ts';
import type { TokenInfo, User } from '../types.ts';
import { ActionButton, ErrorNote, Section, Time, useCan, useLoad, WhoAmIContext } from '../ui.tsx';

const SCOPES = ['read', 'write', 'admin'] as const;
const ROLES = ['viewer', 'operator', 'admin'] as const;

export function AccessPage() {
  const isAdmin = useCan('admin');
  return (
    <>
      <TokensSection />
      {isAdmin && <UsersSection />}
    </>
  );
}

function TokensSection() {
  const who = useContext(WhoAmIContext);
  const canWrite = useCan('write');
  const tokens = useLoad(() => api<TokenInfo[]>('GET', '/api/v1/tokens'), []);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>([]);
  // Empty: the token expires with this session. Tokens only shrink: none may outlive the one that makes it.
  const [days, setDays] = useState('');
  const [made, setMade] = useState<string>();
  return (
    <Section title={who.permissions.includes('admin') ? 'API tokens (everyone’s)' : 'Your API tokens'}>
      <ErrorNote error={tokens.error} />
      <table className="tokens">
        <thead>
          <tr>
            <th>User</th>
            <th>Name</th>
            <th>Scopes</th>
            <th>Created</th>
            <th>Expires</th>
            <th>Last used</th>
            {canWrite && <th />}
          </tr>
        </thead>
        <tbody>
          {(tokens.data ?? []).map((t) => (
            <tr key={t.id} data-token={t.name}>
              <td>{t.user}</td>
              <td>{t.name}</td>
              <td>{t.scopes.length ? t.scopes.join(', ') : <span className="muted">all of the role</span>}</td>
              <td>
                <Time at={t.createdAt} />
              </td>
              <td>{t.expiresAt ? <Time at={t.expiresAt} /> : <span className="muted">never</span>}</td>
              <td>
                <Time at={t.lastUsedAt} />
              </td>
              {canWrite && (
                <td>
                  <ActionButton
                    label="Revoke"
                    danger
                    action={async () => (await api('DELETE', `/api/v1/tokens/${t.id}`), tokens.reload())}
                  />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {canWrite && (
        <form className="inline-form new-token" onSubmit={(e) => e.preventDefault()}>
          <label>
            New token
            <input
              name="token-name"
              placeholder="what it is for"
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          </label>
          <fieldset className="scopes">
            <legend>Scopes (none: all of your role)</legend>
            {SCOPES.filter((s) => who.permissions.includes(s)).map((s) => (
              <label key={s} className="check">
                <input
                  type="checkbox"
                  name={`scope-${s}`}
                  checked={scopes.includes(s)}
                  onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
                />{' '}
                {s}
              </label>
            ))}
          </fieldset>
          <label>
            Expires in days
            <input
              name="token-days"
              className="narrow"
              inputMode="numeric"
              placeholder="with this session"
              title="A token cannot outlive the one that makes it: empty, it expires when this session does"
              value={days}
              onChange={(e) => setDays(e.target.value)}
            />
          </label>
          <ActionButton
            label="Create token"
            disabled={!name.trim() || (!!days && !/^[1-9]\d{0,3}$/.test(days))}
            action={async () => {
              const reply = await api<{ token: string }>('POST', '/api/v1/tokens', {
                json: {
                  name: name.trim(),
                  ...(scopes.length ? { scopes } : {}),
                  ...(days ? { expiresInDays: Number(days) } : {}),
                },
              });
              setMade(reply.token);
              setName('');
              tokens.reload();
            }}
          />
        </form>
      )}
      {made && (
        <p className="new-secret" role="status">
          Copy it now — it is shown once: <code data-testid="new-token">{made}</code>
        </p>
      )}
    </Section>
  );
}

function UsersSection() {
  const users = useLoad(() => api<User[]>('GET', '/api/v1/users'), []);
  const [name, setName] = useState('');
  const [role, setRole] = useState<(typeof ROLES)[number]>('viewer');
  const [password, setPassword] = useState('');
  return (
    <Section title="Users">
      <ErrorNote error={users.error} />
      <table className="users">
        <thead>
          <tr>
            <th>User</th>
            <th>Role</th>
            <th>Since</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(users.data ?? []).map((u) => (
            <tr key={u.name} data-user={u.name}>
              <td>{u.name}</td>
              <td>{u.role}</td>
              <td>
                <Time at={u.createdAt} />
              </td>
              <td>
                <ActionButton
                  label="Remove"
                  danger
                  action={async () => (await api('DELETE', `/api/v1/users/${enc(u.name)}`), users.reload())}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="inline-form" onSubmit={(e) => e.preventDefault()}>
        <label>
          New user
          <input name="user-name" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Role
          <select name="user-role" value={role} onChange={(e) => setRole(e.target.value as (typeof ROLES)[number])}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          Password (12 or more characters)
          <input
            name="user-password"
            type="password"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <ActionButton
          label="Add user"
          disabled={!name.trim() || password.length < 12}
          action={async () => {
            await api('POST', '/api/v1/users', { json: { name: name.trim(), role, password } });
            setName('');
            setPassword('');
            users.reload();
          }}
        />
      </form>
    </Section>
  );
}
