// Sign-in: an API key posted once to /api/v1/session (the server answers with the session
// cookie), or the enterprise identity provider (OpenID Connect) when the server offers it.
import { useEffect, useState } from 'react';
import { ErrorBox } from '../components/common.js';
import { type SessionInfo, type SignInMethods, signInMethods, signInWithKey } from '../session.js';

export function SignIn({ onSignedIn, returnTo }: { onSignedIn(s: SessionInfo): void; returnTo: string }) {
  const [key, setKey] = useState('');
  const [methods, setMethods] = useState<SignInMethods>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    signInMethods().then(setMethods, setError);
  }, []);
  const submit = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const s = await signInWithKey(key.trim());
      setKey('');
      onSignedIn(s);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" className="signin">
      <h1>Sign in to fabrik</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          placeholder="fbk_…"
          required
        />
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in with API key
        </button>
      </form>
      {methods?.oidc.enabled && (
        <p>
          <a className="button" href={`/auth/oidc/login?return_to=${encodeURIComponent(returnTo)}`}>
            Sign in with {methods.oidc.name ?? 'single sign-on'}
          </a>
        </p>
      )}
      <ErrorBox error={error} />
      <p className="hint">
        The key is sent once; the console then uses a session cookie, and never stores the key in the browser.
      </p>
    </main>
  );
}
