// axe-core accessibility checks. The script is evaluated through the DevTools protocol, so
// the pages' Content-Security-Policy (no inline scripts) stays untouched.
'use strict';

const axe = require('axe-core');

/** Runs axe on the page; resolves to the violations of impact serious or critical. */
async function seriousViolations(page) {
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!loaded) await page.evaluate(axe.source);
  const result = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
}

module.exports = { seriousViolations };
