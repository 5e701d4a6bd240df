// The default export makes a FileArchive in `<place>/sessions`: the module the
// cross-process conformance cases import, in the test and in its children.
import path from 'node:path'
import { FileArchive } from '../../dist/archives/file.js'

export default (place) => new FileArchive({ dir: path.join(place, 'sessions'), sweepIntervalMs: 0 })
