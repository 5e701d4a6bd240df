// The Redis Cluster of a benchmark run: three masters on spare ports, started
// by `start()` (which resolves `{ nodes, stop }` once the cluster is up) and
// all ended by `stop()`. The cluster tests start theirs the same way.
export { start, stop } from '../test/helpers/redis-cluster.js'
