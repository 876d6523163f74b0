/** Password sign-in: POST /api/v1/login gives a 12-hour session token, kept for this browser tab. */
import { useState, type FormEvent } from 'react';
import { api, session } from '../api.ts';
import { describe } from '../ui.tsx';

export function LoginPage({ onLoggedIn }: { onLoggedIn: () => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const { token } = await api<{ token: string }>('POST', '/api/v1/login', { json: { name, password } });
      session.set(token);
      onLoggedIn();
    } catch (e) {
      setError(describe(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="login" onSubmit={(e) => void submit(e)}>
      <h1>kvmfleet</h1>
      <label>
        User
        <input
          name="user"
          autoComplete="username"
          value={name}
          onChange={(e) => setName(e.target.value)}
          required
          autoFocus
        />
      </label>
      <label>
        Password
        <input
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
        />
      </label>
      <button type="submit" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
