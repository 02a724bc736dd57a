// Latch built-in UI: the only script the pages load. Forms work without it; it wires the
// buttons and fields whose flow nodes carry a trigger (WebAuthn / passkeys) to the
// functions the flow's script node defines, and makes Enter submit the method being used.
(function () {
  'use strict';

  // Calls window[name]() once the flow's script has defined it (the script loads async).
  function callTrigger(name, attemptsLeft) {
    if (!/^[A-Za-z_$][\w$]*$/.test(name)) return;
    var fn = window[name];
    if (typeof fn === 'function') {
      fn();
    } else if (attemptsLeft > 0) {
      setTimeout(function () { callTrigger(name, attemptsLeft - 1); }, 100);
    }
  }

  document.addEventListener('click', function (event) {
    var el = event.target instanceof Element ? event.target.closest('[data-trigger]') : null;
    if (!el) return;
    event.preventDefault();
    callTrigger(el.getAttribute('data-trigger'), 50);
  });

  // Enter in a field submits with the button of the field's own method group (or, for
  // shared fields, the first button of a group whose fields were filled in).
  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Enter' || event.defaultPrevented) return;
    var field = event.target;
    if (!(field instanceof HTMLInputElement) || !field.form) return;
    var form = field.form;
    var group = field.getAttribute('data-group');
    var buttons = Array.prototype.slice.call(form.querySelectorAll('button[type="submit"]'));
    var pick = null;
    if (group && group !== 'default') {
      pick = buttons.find(function (b) { return b.getAttribute('data-group') === group; }) || null;
    } else {
      pick = buttons.find(function (b) {
        var g = b.getAttribute('data-group');
        if (!g || g === 'default') return false;
        var inputs = form.querySelectorAll('input[data-group="' + g + '"]:not([type="hidden"])');
        return Array.prototype.some.call(inputs, function (i) { return i.value !== ''; });
      }) || null;
    }
    if (pick && !pick.disabled) {
      event.preventDefault();
      if (typeof form.requestSubmit === 'function') form.requestSubmit(pick); else pick.click();
    }
  });

  function onLoad() {
    var els = document.querySelectorAll('[data-onload-trigger]');
    Array.prototype.forEach.call(els, function (el) {
      callTrigger(el.getAttribute('data-onload-trigger'), 50);
    });
  }
  if (document.readyState === 'complete') onLoad(); else window.addEventListener('load', onLoad);
})();
