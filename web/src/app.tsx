// The console's shell: who is signed in, the navigation (a landmark, keyboard reachable, with a
// skip link), and the page for the URL. Pages that chart are loaded on demand.
import { Suspense, lazy, useEffect, useState } from 'react';
import { ErrorBox } from './components/common.js';
import { Audit } from './pages/Audit.js';
import { Overview } from './pages/Overview.js';
import { SignIn } from './pages/SignIn.js';
import { WorkloadDetail } from './pages/WorkloadDetail.js';
import { Queue, SubmitWorkload, Workloads } from './pages/Workloads.js';
import { Link, matchRoute, navigate, useLocation } from './router.js';
import { type SessionInfo, currentSession, signOut } from './session.js';

const Deployments = lazy(() => import('./pages/Deployments.js'));
const Registry = lazy(() => import('./pages/Registry.js'));
const Usage = lazy(() => import('./pages/Usage.js'));
const Operators = lazy(() => import('./pages/Operators.js'));
const Simulator = lazy(() => import('./pages/Simulator.js'));

export const NAV: readonly [string, string][] = [
  ['/', 'Overview'],
  ['/queue', 'Queue'],
  ['/workloads', 'Workloads'],
  ['/deployments', 'Deployments'],
  ['/registry', 'Models and datasets'],
  ['/usage', 'Usage and cost'],
  ['/audit', 'Audit'],
  ['/operators', 'Operators'],
  ['/simulator', 'Simulator'],
];

function Page({ path, session }: { path: string; session: SessionInfo }) {
  const detail = matchRoute('/workloads/:project/:name', path);
  if (path === '/workloads/new') return <SubmitWorkload />;
  if (detail) return <WorkloadDetail project={detail.project!} name={detail.name!} operator={session.operator} />;
  switch (path) {
    case '/':
      return <Overview session={session} />;
    case '/queue':
      return <Queue />;
    case '/workloads':
      return <Workloads />;
    case '/deployments':
      return <Deployments />;
    case '/registry':
      return <Registry />;
    case '/usage':
      return <Usage session={session} />;
    case '/audit':
      return <Audit />;
    case '/operators':
      return <Operators session={session} />;
    case '/simulator':
      return <Simulator />;
    default:
      return (
        <section aria-labelledby="nf-h">
          <h1 id="nf-h">Not found</h1>
          <p>No console page at {path}.</p>
        </section>
      );
  }
}

export function App() {
  const { path } = useLocation();
  const [session, setSession] = useState<SessionInfo | null>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    currentSession().then(
      (s) => setSession(s ?? null),
      (e) => {
        setError(e);
        setSession(null);
      },
    );
  }, []);
  useEffect(() => {
    if (session === null && path !== '/signin') navigate(`/signin?return_to=${encodeURIComponent(path)}`, true);
  }, [session, path]);
  if (session === undefined) return <p className="loading">Loading…</p>;
  if (session === null) {
    const back = new URLSearchParams(location.search).get('return_to');
    const returnTo = back?.startsWith('/') && !back.startsWith('//') ? back : '/';
    return (
      <>
        <ErrorBox error={error} />
        <SignIn
          returnTo={returnTo}
          onSignedIn={(s) => {
            setSession(s);
            navigate(returnTo === '/signin' ? '/' : returnTo, true);
          }}
        />
      </>
    );
  }
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">fabrik</span>
        <span className="who">
          {session.principal}
          {session.operator ? ' (operator)' : ''} ·{' '}
          <button
            type="button"
            className="linklike"
            onClick={() => {
              void signOut(session).finally(() => {
                setSession(null);
                navigate('/signin', true);
              });
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <nav aria-label="Console" className="side">
        <ul>
          {NAV.map(([to, label]) => {
            const current = to === '/' ? path === '/' : path === to || path.startsWith(`${to}/`);
            return (
              <li key={to}>
                <Link to={to} aria-current={current ? 'page' : undefined}>
                  {label}
                </Link>
              </li>
            );
          })}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p>Loading…</p>}>
          <Page path={path === '/signin' ? '/' : path} session={session} />
        </Suspense>
      </main>
    </>
  );
}
