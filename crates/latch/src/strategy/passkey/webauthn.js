// Latch: WebAuthn and passkey helpers for self-service forms.
// Served at /.well-known/ory/webauthn.js; flows reference it with a subresource integrity hash.
// The functions read the ceremony options from the form's hidden inputs, ask the browser for a
// credential and submit the form natively (like Kratos' script) with the credential as JSON text.
(function () {
  "use strict";

  function toBytes(value) {
    var s = String(value).replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var raw = atob(s);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return undefined;
    }
    var bytes = new Uint8Array(buffer);
    var s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(list) {
    return (list || []).map(function (d) {
      var copy = Object.assign({}, d);
      copy.id = toBytes(d.id);
      return copy;
    });
  }

  function creationOptions(publicKey) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(publicKey);
    }
    var o = Object.assign({}, publicKey);
    o.challenge = toBytes(publicKey.challenge);
    o.user = Object.assign({}, publicKey.user, { id: toBytes(publicKey.user.id) });
    if (publicKey.excludeCredentials) {
      o.excludeCredentials = decodeDescriptors(publicKey.excludeCredentials);
    }
    return o;
  }

  function requestOptions(publicKey) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(publicKey);
    }
    var o = Object.assign({}, publicKey);
    o.challenge = toBytes(publicKey.challenge);
    if (publicKey.allowCredentials) {
      o.allowCredentials = decodeDescriptors(publicKey.allowCredentials);
    }
    return o;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try {
        return JSON.stringify(credential.toJSON());
      } catch (e) {
        // Fall through to the manual encoding.
      }
    }
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      if (typeof r.getTransports === "function") {
        response.transports = r.getTransports();
      }
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = toText(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    });
  }

  function input(name) {
    return document.querySelector('input[name="' + name + '"]');
  }

  function parseValue(name) {
    var el = input(name);
    if (!el || !el.value) {
      return null;
    }
    try {
      return JSON.parse(el.value);
    } catch (e) {
      console.error("Latch: the " + name + " input does not hold JSON", e);
      return null;
    }
  }

  // Fills `name` with the credential, selects the method and submits the enclosing form.
  function submitWith(name, method, value) {
    var el = input(name);
    if (!el) {
      console.error("Latch: no " + name + " input in the page");
      return;
    }
    el.value = value;
    var form = el.closest("form");
    if (!form) {
      console.error("Latch: the " + name + " input is not inside a form");
      return;
    }
    var methods = form.querySelectorAll('input[name="method"]');
    var hidden = null;
    for (var i = 0; i < methods.length; i++) {
      if (methods[i].type === "hidden") {
        hidden = methods[i];
      }
    }
    if (!hidden) {
      hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "method";
      form.appendChild(hidden);
    }
    hidden.value = method;
    // A native form submission, as Kratos' script does: the browser posts the form's fields
    // as they are in the page, without firing `submit` handlers and without constraint
    // validation (other methods' required fields must not stop it). UI kits that keep their
    // own copy of the values (React forms such as Ory Elements) would otherwise post that
    // stale copy, without the credential. The prototype's method is used because a control
    // named "submit" would shadow `form.submit`.
    HTMLFormElement.prototype.submit.call(form);
  }

  function unwrap(data) {
    if (!data) {
      return null;
    }
    if (data.credentialOptions) {
      return data.credentialOptions.publicKey || data.credentialOptions;
    }
    return data.publicKey || data;
  }

  function fieldValue(names) {
    for (var i = 0; i < names.length; i++) {
      var el = input(names[i]);
      if (el && el.value) {
        return el.value;
      }
    }
    return "";
  }

  var pendingLogin = null;

  function cancelPending() {
    if (pendingLogin) {
      pendingLogin.abort();
      pendingLogin = null;
    }
  }

  function report(error) {
    if (error && error.name === "AbortError") {
      return;
    }
    console.error("Latch: the WebAuthn ceremony failed", error);
  }

  // Passkey sign in on click: any passkey of this site, chosen by the person.
  function passkeyLogin() {
    var options = unwrap(parseValue("passkey_challenge"));
    if (!options) {
      return;
    }
    cancelPending();
    navigator.credentials
      .get({ publicKey: requestOptions(options) })
      .then(function (credential) {
        submitWith("passkey_login", "passkey", credentialJSON(credential));
      })
      .catch(report);
  }

  // Passkey sign in through the browser's autofill (conditional mediation).
  function passkeyLoginAutocompleteInit() {
    var options = unwrap(parseValue("passkey_challenge"));
    if (!options || !window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable()
      .then(function (available) {
        if (!available) {
          return;
        }
        cancelPending();
        pendingLogin = new AbortController();
        return navigator.credentials
          .get({ publicKey: requestOptions(options), mediation: "conditional", signal: pendingLogin.signal })
          .then(function (credential) {
            pendingLogin = null;
            submitWith("passkey_login", "passkey", credentialJSON(credential));
          });
      })
      .catch(report);
  }

  function create(data, targetName) {
    var options = unwrap(data);
    if (!options) {
      return;
    }
    var names = (data && (data.displayNameFieldNames || (data.displayNameFieldName ? [data.displayNameFieldName] : []))) || [];
    var name = fieldValue(names);
    if (name) {
      options = Object.assign({}, options, { user: Object.assign({}, options.user, { name: name, displayName: name }) });
    }
    cancelPending();
    navigator.credentials
      .create({ publicKey: creationOptions(options) })
      .then(function (credential) {
        submitWith(targetName, "passkey", credentialJSON(credential));
      })
      .catch(report);
  }

  // Sign up with a passkey.
  function passkeyRegistration() {
    create(parseValue("passkey_create_data"), "passkey_register");
  }

  // Add a passkey in the settings.
  function passkeySettingsRegistration() {
    create(parseValue("passkey_create_data"), "passkey_settings_register");
  }

  function optionsFrom(arg, triggerName) {
    if (arg && typeof arg === "object") {
      return unwrap(arg);
    }
    return unwrap(parseValue(triggerName));
  }

  // Security key sign in (webauthn method).
  function webAuthnLogin(arg) {
    var options = optionsFrom(arg, "webauthn_login_trigger");
    if (!options) {
      return;
    }
    cancelPending();
    navigator.credentials
      .get({ publicKey: requestOptions(options) })
      .then(function (credential) {
        submitWith("webauthn_login", "webauthn", credentialJSON(credential));
      })
      .catch(report);
  }

  // Security key registration (webauthn method).
  function webAuthnRegistration(arg) {
    var options = optionsFrom(arg, "webauthn_register_trigger");
    if (!options) {
      return;
    }
    var name = fieldValue(["webauthn_register_displayname"]);
    if (name && options.user) {
      options = Object.assign({}, options, { user: Object.assign({}, options.user, { displayName: name }) });
    }
    navigator.credentials
      .create({ publicKey: creationOptions(options) })
      .then(function (credential) {
        submitWith("webauthn_register", "webauthn", credentialJSON(credential));
      })
      .catch(report);
  }

  var api = {
    oryPasskeyLogin: passkeyLogin,
    oryPasskeyLoginAutocompleteInit: passkeyLoginAutocompleteInit,
    oryPasskeyRegistration: passkeyRegistration,
    oryPasskeySettingsRegistration: passkeySettingsRegistration,
    oryWebAuthnLogin: webAuthnLogin,
    oryWebAuthnRegistration: webAuthnRegistration,
  };
  Object.keys(api).forEach(function (name) {
    window[name] = api[name];
    window["__" + name] = api[name];
  });
  window.dispatchEvent(new Event("oryWebAuthnInitialized"));
})();
