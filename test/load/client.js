import http from 'node:http'

/**
 * A request over `agent` carrying `cookie`: resolves with the status, the
 * parsed JSON body and the first `Set-Cookie` as "name=value".
 */
export function send (agent, url, method, cookie) {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { method, agent, headers: cookie === undefined ? {} : { cookie } }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => { body += chunk })
      response.on('end', () => {
        const setCookie = response.headers['set-cookie']?.[0]
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(body), cookie: setCookie?.slice(0, setCookie.indexOf(';')) })
      })
    })
    outgoing.on('error', reject)
    outgoing.end()
  })
}
