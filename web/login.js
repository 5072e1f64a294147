// SPDX-License-Identifier: MIT
// login.js: the login form. Posts JSON to /api/login (same origin, so the
// browser sends Origin) and goes to the overview on success. Messages from
// the server are shown with textContent only.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('login-form');
  const err = document.getElementById('login-error');
  const button = document.getElementById('login-button');
  if (new URLSearchParams(location.search).get('idle') === '1') {
    err.textContent = 'You were logged out after a while without activity.';
    err.hidden = false;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    button.disabled = true;
    try {
      const res = await fetch('/api/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          user: document.getElementById('user').value,
          password: document.getElementById('password').value,
        }),
      });
      if (res.ok) {
        const next = new URLSearchParams(location.search).get('next');
        location.assign(next && /^\/[a-z]+$/.test(next) ? next : '/overview');
        return;
      }
      let msg = 'Login failed (' + res.status + ')';
      try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
      err.textContent = msg;
      err.hidden = false;
      document.getElementById('password').select();
    } catch (e) {
      err.textContent = 'The box did not answer: ' + e.message;
      err.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
});
