// A small app on the plugin's default mode: a visit counter, a login form,
// a logout button and a flash message. `npm start` runs it.
import Fastify from 'fastify'
import formbody from '@fastify/formbody'
import fastifySessions from 'fastify-sessions'

const secret = process.env.SESSION_SECRET ?? 'an-example-secret-replace-it-in-production!'
const app = Fastify({ logger: true })
await app.register(formbody)
await app.register(fastifySessions, { secret })

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

app.get('/', async (request, reply) => {
  const visits = (request.session.get('visits') ?? 0) + 1
  request.session.set('visits', visits)
  const user = request.session.get('user')
  const messages = request.session.flashes()
  reply.type('text/html')
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fastify-sessions example</title></head>
<body>
  ${messages.map((m) => `<p role="status"><strong>${escape(m)}</strong></p>`).join('\n  ')}
  <p>You have visited this page ${visits} time${visits === 1 ? '' : 's'} in this session.</p>
  ${user
    ? `<p>Signed in as ${escape(user.name)}.</p>
  <form method="post" action="/logout"><button>Log out</button></form>`
    : `<form method="post" action="/login">
    <label>Name <input name="name" required maxlength="40"></label>
    <button>Log in</button>
  </form>`}
</body>
</html>`
})

app.post('/login', async (request, reply) => {
  const name = String(request.body?.name ?? '').trim().slice(0, 40) || 'stranger'
  await request.session.regenerate(['visits'])
  request.session.set('user', { name })
  request.session.flash(`Welcome, ${name}!`)
  return reply.redirect('/', 303)
})

app.post('/logout', async (request, reply) => {
  await request.session.destroy()
  request.session.flash('You are logged out.')
  return reply.redirect('/', 303)
})

app.get('/health', { config: { session: false } }, async () => 'ok')

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
