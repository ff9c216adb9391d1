// The script the web client's page runs after converse.min.js: it reads the page's settings
// (a JSON block, so the Content-Security-Policy needs no inline script) and starts Converse.js.
// The plugin replaces the fullscreen login page's footer, which shows sponsor logos loaded
// from conversejs.org: a page of this server makes no request to another host.
export const WEB_CLIENT_INIT = `// A module, run after converse.min.js (also a module, which sets window.converse).
(function () {
  var page = JSON.parse(document.getElementById('starling-web-client').textContent);
  converse.plugins.add('starling-web-client', {
    initialize: function () {
      this._converse.api.elements.define('converse-footer', class extends HTMLElement {});
    },
  });
  var settings = Object.assign({}, page.settings, {
    assets_path: new URL(page.assets, document.baseURI).href,
    whitelisted_plugins: ['starling-web-client'],
  });
  converse.initialize(settings);
})();
`;
