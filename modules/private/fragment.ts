// Stored XML (private XML storage here, and vCards: modules/vcard): an element kept as its
// serialisation, self-contained (src/xml/clone.ts detach), and read back with the server's own
// restricted parser (src/xml/parse.ts).
export { detach } from '../../src/xml/clone.js';
