// The demo's pages: plain HTML with a little inline CSS, no build step.
// Everything that comes from a request or a session goes through `escape`.

export const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const STYLE = `
  :root { --ink: #1d2330; --muted: #5b6475; --line: #dfe3ea; --accent: #2453c6; --paper: #f5f6f8; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--paper); }
  header, main, footer { max-width: 44rem; margin: 0 auto; padding: 0 1rem; }
  header { padding-top: 1.5rem; padding-bottom: 1rem; }
  h1 { font-size: 1.6rem; margin: 0; letter-spacing: -0.01em; }
  h1 span { color: var(--muted); font-weight: 400; }
  h2 { font-size: 1.1rem; margin: 0 0 0.75rem; }
  h3 { font-size: 0.95rem; margin: 1rem 0 0.4rem; color: var(--muted); font-weight: 600; }
  .where { margin: 0.25rem 0 0; color: var(--muted); }
  .badge { display: inline-block; padding: 0 0.5rem; border-radius: 999px; background: var(--ink); color: #fff; font-size: 0.85rem; font-weight: 600; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.25rem; margin: 0 0 1rem; }
  .flash { background: #e7f6ec; border: 1px solid #b6e2c3; color: #14532d; border-radius: 10px; padding: 0.6rem 1rem; margin: 0 0 1rem; }
  .note { color: var(--muted); font-size: 0.875rem; margin: 0.75rem 0 0; }
  form { margin: 0; }
  .row { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: end; }
  label { display: flex; flex-direction: column; gap: 0.2rem; font-size: 0.9rem; color: var(--muted); }
  label.check { flex-direction: row; align-items: center; gap: 0.4rem; }
  input[type=text] { font: inherit; color: var(--ink); padding: 0.45rem 0.6rem; border: 1px solid #c5cbd6; border-radius: 6px; min-width: 12rem; }
  button { font: inherit; font-weight: 600; padding: 0.45rem 1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: var(--accent); }
  .big { font-size: 2rem; font-weight: 700; line-height: 1; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1rem; margin: 1rem 0 0; }
  dt { color: var(--muted); }
  dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
  .bar { height: 0.5rem; background: #e9ecf1; border-radius: 999px; overflow: hidden; margin-top: 0.3rem; max-width: 20rem; }
  .bar span { display: block; height: 100%; background: var(--accent); }
  .bar.near span { background: #c2410c; }
  pre { margin: 0; padding: 0.75rem; background: #f3f5f8; border-radius: 6px; overflow-x: auto; font-size: 0.85rem; }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; }
  ul.devices { list-style: none; padding: 0; margin: 0 0 0.75rem; }
  ul.devices li { padding: 0.3rem 0; border-bottom: 1px solid var(--line); }
  footer { color: var(--muted); font-size: 0.8rem; padding-bottom: 2rem; }
  a { color: var(--accent); }
`

function layout (title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`
}

// Session values for the eye: long strings shortened, values beyond JSON readable.
function showable (key, value) {
  if (typeof value === 'string' && value.length > 60) return `${value.slice(0, 24)}… (${value.length} characters)`
  if (typeof value === 'bigint') return `${value}n`
  if (value instanceof Map) return Object.fromEntries(value)
  if (value instanceof Set) return [...value]
  return value
}

function loginForm (rememberMe) {
  return `<form id="login" method="post" action="/login">
      <div class="row">
        <label>Your name <input type="text" name="name" required maxlength="40" autocomplete="username"></label>
        ${rememberMe ? '<label class="check"><input type="checkbox" name="remember"> Remember me for 30 days</label>' : ''}
        <button>Log in</button>
      </div>
    </form>
    <p class="note">Logging in calls <code>regenerate()</code>: a new session (in archive mode, a new id), so a session planted in your browser before login is worth nothing after it.</p>`
}

function signedIn (user) {
  const since = user.since instanceof Date
    ? ` since <time datetime="${user.since.toISOString()}">${user.since.toISOString().slice(11, 16)} UTC</time>`
    : ''
  return `<p>Signed in as <strong data-testid="user">${escape(user.name)}</strong>${since}.</p>
    <form method="post" action="/logout"><button class="secondary">Log out</button></form>
    <p class="note">Log out is a POST form, never a link: <code>destroy()</code> ends the session and clears its cookie.</p>`
}

function cookieFigure ({ name, bytes, limit, source }) {
  const percent = Math.min(100, Math.round(bytes / limit * 100))
  return `<code>${escape(name)}</code>: <strong data-testid="cookie-bytes">${bytes}</strong> of ${limit} bytes
        <span class="note">(${escape(source)})</span>
        <div class="bar${bytes >= limit * 7 / 8 ? ' near' : ''}" aria-hidden="true"><span style="width: ${percent}%"></span></div>`
}

function devicesCard (devices) {
  const items = devices.map((device) => `<li>Signed in ${escape(device.createdAt.toISOString().slice(0, 16).replace('T', ' '))} UTC, last seen ${escape(device.lastSeenAt.toISOString().slice(11, 16))} UTC${device.current ? ' <strong>(this device)</strong>' : ''}</li>`)
  return `<section class="card" aria-labelledby="devices">
    <h2 id="devices">Your devices</h2>
    <ul class="devices" data-testid="devices">${items.join('')}</ul>
    <form method="post" action="/devices/sign-out-others"><button class="secondary">Sign out other devices</button></form>
  </section>`
}

function growCard () {
  return `<section class="card" aria-labelledby="grow">
    <h2 id="grow">Grow the session</h2>
    <form method="post" action="/grow"><button class="secondary">Add 1 KB to the session</button></form>
    <p class="note">Watch the cookie size: past 4096 bytes a cookie is more than a browser promises to keep.</p>
  </section>`
}

export function homePage ({ mode, where, randomSecret, visits, messages, user, sessionId, contents, contentsFrom, cookie, rememberMe, devices, grow }) {
  const shown = JSON.stringify(contents, showable, 2)
  return layout('fastify-sessions demo', `<header>
  <h1>fastify-sessions <span>demo</span></h1>
  <p class="where"><span class="badge" data-testid="mode">${escape(mode)}</span> <span data-testid="where">${escape(where)}</span></p>
</header>
<main>
  ${messages.map((message) => `<p class="flash" role="status">${escape(message)}</p>`).join('\n  ')}
  <section class="card" aria-labelledby="you">
    <h2 id="you">You</h2>
    ${user === undefined ? loginForm(rememberMe) : signedIn(user)}
  </section>
  <section class="card" aria-labelledby="session">
    <h2 id="session">This session</h2>
    <p><span class="big" data-testid="visits">${visits}</span> ${visits === 1 ? 'visit' : 'visits'} to this page in this session</p>
    <dl>
      <dt>Cookie</dt>
      <dd>${cookieFigure(cookie)}</dd>
      ${sessionId === undefined ? '' : `<dt>Session id</dt><dd><code data-testid="session-id">${escape(sessionId.slice(0, 8))}…</code> (signed; the state is in the archive)</dd>`}
    </dl>
    <h3>What it holds</h3>
    <pre data-testid="contents">${escape(shown)}</pre>
    <p class="note">${escape(contentsFrom)}</p>
  </section>
  ${devices === undefined ? '' : devicesCard(devices)}
  ${grow ? growCard() : ''}
</main>
<footer>
  <p>${randomSecret
    ? 'Signed with a random secret made when the server started: sessions end when it stops. Set <code>SESSION_SECRET</code> to keep them.'
    : 'Signed with <code>SESSION_SECRET</code>.'}
  Modes: <code>SESSION_MODE=cookie|file|memory|redis npm start</code>.</p>
</footer>`)
}

export function signedOutPage () {
  return layout('Signed out · fastify-sessions demo', `<header>
  <h1>fastify-sessions <span>demo</span></h1>
</header>
<main>
  <section class="card">
    <h2>You are signed out</h2>
    <p>The session was destroyed and its cookie cleared. This page has no session at all
    (<code>config: { session: false }</code>): it reads no cookie and sets none.</p>
    <p><a href="/">Back to the demo</a></p>
  </section>
</main>`)
}

export function notFoundPage (url) {
  return layout('Not found · fastify-sessions demo', `<header>
  <h1>fastify-sessions <span>demo</span></h1>
</header>
<main>
  <section class="card">
    <h2>Page not found</h2>
    <p>There is no page at <code data-testid="path">${escape(url)}</code>.</p>
    <p><a href="/">Back to the demo</a></p>
  </section>
</main>`)
}

export function errorPage (status, code, message) {
  return layout(`Error ${status} · fastify-sessions demo`, `<header>
  <h1>fastify-sessions <span>demo</span></h1>
</header>
<main>
  <section class="card">
    <h2>${status >= 500 ? 'Something went wrong' : 'That request did not work'}</h2>
    <p>Error ${status}${code === undefined ? '' : `: <code>${escape(code)}</code>`}.</p>
    ${message === undefined ? '' : `<p data-testid="message">${escape(message)}</p>`}
    <p><a href="/">Back to the demo</a></p>
  </section>
</main>`)
}
