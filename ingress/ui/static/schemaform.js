// The Submit page's form, generated from the command JSON Schema (GET /ui/submit/schema).
//
// The generated inputs have no name, so they are never posted themselves: their values are written, as
// one JSON object, into the page's `body` textarea, which is what the server checks with the API's own
// rules (and all that a browser without this script shows). The textarea stays editable and in sync both
// ways; whichever was edited last is what gets submitted. A field the generator cannot render (a union of
// objects without a tag, a free-form object, a value of an unexpected shape) is a small JSON textarea.
(function () {
  "use strict";

  var MODE_KEY = "switchyard.submit.json-mode";
  var DATE = /^\d{4}-\d{2}-\d{2}$/;

  var form, typeSelect, typeHelp, fields, body, jsonStatus, jsonToggle, jsonMode;
  var defs = null;
  var types = null;
  var root = null;           // the controller of the chosen type's fields
  var lastEdited = "json";   // the server-rendered textarea is the truth until the form is touched
  var error = null;          // the server's {path, message} from the last submit
  var errorCleared = false;
  var counter = 0;

  // ---- small helpers

  function make(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function newId() { counter += 1; return "sf-" + counter; }
  function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function has(obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); }
  function plain(text) { return String(text || "").replace(/``/g, "").replace(/\s+/g, " ").trim(); }
  function show(value) { return typeof value === "string" ? value : JSON.stringify(value); }

  function deref(schema) {
    var seen = 0;
    while (schema && schema.$ref && seen < 32) {
      schema = defs[schema.$ref.split("/").pop()];
      seen += 1;
    }
    return schema || {};
  }

  // A nullable X is anyOf [X, null] (or type [X, "null"]): in the form, empty means omitted.
  function unwrap(schema) {
    var outer = deref(schema);
    var nullable = false;
    var inner = outer;
    if (Array.isArray(outer.anyOf)) {
      var others = outer.anyOf.filter(function (b) { return deref(b).type !== "null"; });
      nullable = others.length < outer.anyOf.length;
      inner = others.length === 1 ? deref(others[0]) : { anyOf: others, discriminator: outer.discriminator };
    } else if (Array.isArray(outer.type)) {
      var kinds = outer.type.filter(function (t) { return t !== "null"; });
      nullable = kinds.length < outer.type.length;
      inner = Object.assign({}, outer, { type: kinds.length === 1 ? kinds[0] : kinds });
    }
    return {
      schema: inner,
      nullable: nullable,
      description: outer.description || inner.description,
      default: has(outer, "default") ? outer.default : inner.default,
    };
  }

  function enumOf(schema) {
    if (Array.isArray(schema.enum)) return schema.enum;
    if (has(schema, "const")) return [schema.const];
    return null;
  }

  function isPrimitive(schema) {
    return schema.type === "string" || schema.type === "number" || schema.type === "integer";
  }

  function kindOf(schema) {
    if (schema.anyOf) {
      var tagged = schema.discriminator && schema.discriminator.propertyName && schema.discriminator.mapping;
      return tagged ? "union" : "json";
    }
    if (enumOf(schema)) return "enum";
    if (schema.type === "object") return schema.properties ? "object" : "json";
    if (schema.type === "array") {
      var item = unwrap(schema.items || {});
      if (item.schema.anyOf || Array.isArray(item.schema.type)) return "json";
      if (enumOf(item.schema) && !item.nullable) return "checks";
      if (isPrimitive(item.schema)) return "lines";
      if (item.schema.type === "object" && item.schema.properties && !item.nullable) return "rows";
      return "json";
    }
    if (isPrimitive(schema)) return schema.type === "string" ? "string" : "number";
    if (schema.type === "boolean") return "boolean";
    return "json";
  }

  // Whether a value (from the JSON or a link) can be shown by a kind's input without changing it.
  function fits(kind, schema, value) {
    if (value === undefined || value === null) return true;
    switch (kind) {
      case "string":
        return typeof value === "string";
      case "number":
        return typeof value === "number";
      case "boolean":
        return typeof value === "boolean";
      case "enum":
        return enumOf(schema).indexOf(value) >= 0;
      case "object":
        return isObject(value);
      case "union":
        return isObject(value) && has(schema.discriminator.mapping, value[schema.discriminator.propertyName]);
      case "checks":
        return Array.isArray(value) && value.every(function (v) { return enumOf(unwrap(schema.items).schema).indexOf(v) >= 0; });
      case "rows":
        return Array.isArray(value) && value.every(isObject);
      case "lines":
        var item = unwrap(schema.items || {});
        // one item a line: an item the lines cannot carry as it is (blank, multi-line) needs the JSON
        return Array.isArray(value) && value.every(function (v) {
          if (v === null) return item.nullable;
          if (item.schema.type === "string") return typeof v === "string" && v !== "" && v.trim() === v && v.indexOf("\n") < 0;
          // a wrong item (the server's 422 names it) is shown as typed, as long as it reads back the same
          if (typeof v === "string") return v !== "" && v.trim() === v && !/[\n,]/.test(v) && v !== "null" && !isFinite(Number(v));
          return typeof v === "number";
        });
      default:
        return true;
    }
  }

  // The HTML pattern attribute is anchored and compiled with the v flag: set only what means the same.
  var patternFlag = (function () { try { new RegExp("", "v"); return "v"; } catch (e) { return "u"; } })();
  function htmlPattern(pattern) {
    if (typeof pattern !== "string" || pattern.charAt(0) !== "^" || pattern.slice(-1) !== "$") return null;
    try { new RegExp("^(?:" + pattern + ")$", patternFlag); } catch (e) { return null; }
    return pattern;
  }

  function count(n, noun) { return n + " " + noun + (n === 1 ? "" : "s"); }

  function limits(schema) {
    var parts = [];
    if (schema.minimum !== undefined) parts.push("≥ " + schema.minimum);
    if (schema.exclusiveMinimum !== undefined) parts.push("> " + schema.exclusiveMinimum);
    if (schema.maximum !== undefined) parts.push("≤ " + schema.maximum);
    if (schema.exclusiveMaximum !== undefined) parts.push("< " + schema.exclusiveMaximum);
    if (schema.type === "integer") parts.unshift("integer");
    if (schema.minLength) parts.push("at least " + count(schema.minLength, "character"));
    if (schema.maxLength !== undefined) parts.push("at most " + count(schema.maxLength, "character"));
    if (schema.format) parts.push(schema.format);
    if (schema.minItems) parts.push("at least " + count(schema.minItems, "item"));
    if (schema.maxItems !== undefined) parts.push("at most " + count(schema.maxItems, "item"));
    return parts.join(", ");
  }

  // ---- one field: a label, the control, help text

  function helpText(spec, extra) {
    var parts = [];
    if (spec.description) parts.push(plain(spec.description));
    if (extra) parts.push(extra);
    if (spec.default !== undefined && spec.default !== null) parts.push("default: " + show(spec.default));
    else if (!spec.required) parts.push("optional");
    return parts.join(" · ");
  }

  function wrap(spec, control, help, inline) {
    var label = make("label", { for: control.id, text: spec.name });
    if (spec.required) label.appendChild(make("abbr", { class: "req", title: "required", text: " *" }));
    var helpNode = help ? make("p", { class: "help", id: control.id + "-help", text: help }) : null;
    if (helpNode) control.setAttribute("aria-describedby", helpNode.id);
    if (spec.required) control.setAttribute("aria-required", "true");
    var row = inline ? make("div", { class: "inline" }, [control, label]) : null;
    return make("div", { class: "field" }, inline ? [row, helpNode] : [label, control, helpNode]);
  }

  function fieldset(spec, legend, children) {
    var node = make("fieldset", { class: "group", "data-path": spec.path });
    var title = make("legend", { text: legend });
    if (spec.required && !spec.row) title.appendChild(make("abbr", { class: "req", title: "required", text: " *" }));
    node.appendChild(title);
    var help = [plain(spec.description), spec.required || spec.row ? "" : "optional: left empty, it is omitted"];
    help = help.filter(Boolean).join(" · ");
    if (help) node.appendChild(make("p", { class: "help", text: help }));
    children.forEach(function (child) { node.appendChild(child); });
    return node;
  }

  // ---- builders: each returns {el, get}; get() is the field's JSON value, or undefined to omit it

  function build(spec, value) {
    var kind = kindOf(spec.schema);
    // an empty input means omitted: a null that means something else (null where the default is 10, or
    // where null is not allowed at all) is kept, as JSON
    var nullIsOmitted = spec.nullable && (spec.default === undefined || spec.default === null);
    if (!fits(kind, spec.schema, value) || (value === null && !nullIsOmitted)) kind = "json";
    return BUILDERS[kind](spec, value);
  }

  function child(parent, name, propSchema, required) {
    var u = unwrap(propSchema);
    return {
      name: name,
      path: parent.path + "." + name,
      schema: u.schema,
      nullable: u.nullable,
      description: u.description,
      default: u.default,
      required: required,
      // the browser enforces `required` only where the whole chain up to the command is required
      enforce: required && parent.enforce,
    };
  }

  var BUILDERS = {
    string: function (spec, value) {
      var s = spec.schema;
      // a query or a free text is a textarea; a name, a URL or a date is one line
      var long = s.maxLength !== undefined && s.maxLength > 4096;
      var date = s.format === "date" && (value === undefined || value === null || DATE.test(value));
      var control = make(long ? "textarea" : "input", {
        id: newId(),
        type: long ? null : date ? "date" : "text",
        rows: long ? 4 : null,
        "data-path": spec.path,
        minlength: s.minLength,
        maxlength: s.maxLength,
        pattern: long ? null : htmlPattern(s.pattern),
        title: s.pattern ? "pattern: " + s.pattern : null,
        placeholder: spec.default !== undefined && spec.default !== null ? show(spec.default)
          : s.format === "date-time" ? "2024-01-31T12:00:00Z" : s.format === "uuid" ? "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" : null,
        required: spec.enforce,
        spellcheck: "false",
      });
      if (typeof value === "string") control.value = value;
      return {
        el: wrap(spec, control, helpText(spec, limits(s))),
        get: function () { return control.value === "" ? undefined : control.value; },
      };
    },

    number: function (spec, value) {
      var s = spec.schema;
      var control = make("input", {
        id: newId(),
        type: "number",
        "data-path": spec.path,
        step: s.type === "integer" ? "1" : "any",
        min: s.minimum,
        max: s.maximum,
        placeholder: spec.default !== undefined && spec.default !== null ? show(spec.default) : null,
        required: spec.enforce,
      });
      if (typeof value === "number") control.value = String(value);
      return {
        el: wrap(spec, control, helpText(spec, limits(s))),
        get: function () { return control.value === "" ? undefined : Number(control.value); },
      };
    },

    boolean: function (spec, value) {
      if (typeof spec.default !== "boolean" && !spec.required) return BUILDERS.enum(Object.assign({}, spec, { schema: { enum: [true, false] } }), value);
      var control = make("input", { id: newId(), type: "checkbox", "data-path": spec.path });
      control.checked = typeof value === "boolean" ? value : spec.default === true;
      return {
        el: wrap(spec, control, helpText(spec, ""), true),
        get: function () { return !spec.required && control.checked === spec.default ? undefined : control.checked; },
      };
    },

    enum: function (spec, value) {
      var options = enumOf(spec.schema);
      var control = make("select", { id: newId(), "data-path": spec.path, required: spec.enforce });
      var hasDefault = spec.default !== undefined && spec.default !== null;
      if (!spec.required || value === undefined || value === null) {
        var empty = !spec.required ? (hasDefault ? "— (default: " + show(spec.default) + ")" : "— (omitted)") : "— choose —";
        control.appendChild(make("option", { value: "", text: empty }));
      }
      options.forEach(function (option, i) { control.appendChild(make("option", { value: String(i), text: show(option) })); });
      var chosen = options.indexOf(value);
      control.value = chosen >= 0 ? String(chosen) : "";
      return {
        el: wrap(spec, control, helpText(Object.assign({}, spec, { default: undefined, required: true }), "")),
        get: function () { return control.value === "" ? undefined : options[Number(control.value)]; },
      };
    },

    lines: function (spec, value) {
      var item = unwrap(spec.schema.items || {});
      var numeric = item.schema.type !== "string";
      var items = Array.isArray(value) ? value : [];
      var control = make("textarea", {
        id: newId(),
        "data-path": spec.path,
        rows: Math.min(Math.max(items.length + 1, 3), 12),
        spellcheck: "false",
        required: spec.enforce && spec.schema.minItems > 0,
      });
      control.value = items.map(function (v) { return v === null ? "null" : String(v); }).join("\n");
      var how = numeric ? "one per line (or comma-separated)" : "one per line";
      if (item.nullable) how += "; null for a missing value";
      var each = limits(item.schema);
      if (each) how += "; each " + each;
      if (item.schema.pattern) how += "; each matching " + item.schema.pattern;
      var whole = limits({ minItems: spec.schema.minItems, maxItems: spec.schema.maxItems });
      if (whole) how += "; " + whole;
      return {
        el: wrap(spec, control, helpText(spec, how)),
        get: function () {
          var out = control.value.split(numeric ? /[\n,]/ : /\n/).map(function (t) { return t.trim(); })
            .filter(function (t) { return t !== ""; })
            .map(function (t) {
              if (item.nullable && t === "null") return null;
              // not a number: sent as typed, so the server names the item that is wrong
              if (numeric) return isFinite(Number(t)) ? Number(t) : t;
              return t;
            });
          // empty is omitted, never []: an empty required list (a sync to no workspaces at all) is said in JSON
          return out.length ? out : undefined;
        },
      };
    },

    checks: function (spec, value) {
      var options = enumOf(unwrap(spec.schema.items).schema);
      var chosen = Array.isArray(value) ? value : [];
      var boxes = options.map(function (option) {
        var box = make("input", { type: "checkbox", id: newId() });
        box.checked = chosen.indexOf(option) >= 0;
        return box;
      });
      var labels = boxes.map(function (box, i) {
        return make("label", { class: "check", for: box.id }, [box, document.createTextNode(" " + show(options[i]))]);
      });
      var help = [plain(spec.description), limits({ minItems: spec.schema.minItems, maxItems: spec.schema.maxItems })];
      var group = fieldset(Object.assign({}, spec, { description: help.filter(Boolean).join(" · ") }), spec.name, [
        make("div", { class: "checks" }, labels),
      ]);
      return {
        el: group,
        get: function () {
          var out = options.filter(function (option, i) { return boxes[i].checked; });
          return out.length ? out : undefined;
        },
      };
    },

    object: function (spec, value) {
      var s = spec.schema;
      var given = isObject(value) ? value : {};
      var required = s.required || [];
      var skip = spec.skip;  // the tag: the type selector or the union's selector sets it
      var names = Object.keys(s.properties).filter(function (name) { return name !== skip; });
      var parts = names.map(function (name) {
        return build(child(spec, name, s.properties[name], required.indexOf(name) >= 0), given[name]);
      });
      // keys the schema does not know are kept, so the server can name them
      var extras = Object.keys(given).filter(function (k) { return !has(s.properties, k) && k !== skip; });
      var nodes = parts.map(function (p) { return p.el; });
      var el = spec.top ? make("div", { class: "top" }, nodes) : fieldset(spec, spec.name, nodes);
      return {
        el: el,
        get: function () {
          var out = {};
          parts.forEach(function (p, i) {
            var v = p.get();
            if (v !== undefined) out[names[i]] = v;
          });
          extras.forEach(function (k) { out[k] = given[k]; });
          if (!spec.required && !spec.top && Object.keys(out).length === 0) return undefined;
          return out;
        },
      };
    },

    rows: function (spec, value) {
      var item = unwrap(spec.schema.items);
      var list = make("div", { class: "rows" });
      var rows = [];
      function render(values) {
        list.textContent = "";
        rows = values.map(function (v, i) {
          var row = BUILDERS.object({
            name: spec.name + "[" + i + "]",
            path: spec.path + "[" + i + "]",
            schema: item.schema,
            description: "",
            required: true,
            enforce: true,
            skip: null,
            row: true,
          }, v);
          var remove = make("button", { type: "button", class: "secondary remove", text: "Remove " + spec.name + "[" + i + "]" });
          remove.addEventListener("click", function () { change(function (all) { all.splice(i, 1); }); });
          row.el.appendChild(remove);
          list.appendChild(row.el);
          return row;
        });
      }
      function current() { return rows.map(function (r) { return r.get(); }); }
      function change(edit) {
        var all = current();
        edit(all);
        render(all);
        list.dispatchEvent(new Event("input", { bubbles: true }));
      }
      var initial = Array.isArray(value) ? value : spec.required && spec.schema.minItems > 0 ? [{}] : [];
      render(initial);
      var add = make("button", { type: "button", class: "secondary add", text: "Add " + spec.name });
      add.addEventListener("click", function () { change(function (all) { all.push({}); }); });
      var whole = limits({ minItems: spec.schema.minItems, maxItems: spec.schema.maxItems });
      var node = fieldset(Object.assign({}, spec, { description: [plain(spec.description), whole].filter(Boolean).join(" · ") }), spec.name, [list, add]);
      return {
        el: node,
        get: function () {
          var out = current();
          return out.length ? out : undefined;
        },
      };
    },

    union: function (spec, value) {
      var tag = spec.schema.discriminator.propertyName;
      var mapping = spec.schema.discriminator.mapping;
      var names = Object.keys(mapping).sort();
      var current = isObject(value) ? value[tag] : undefined;
      var select = make("select", { id: newId(), "data-path": spec.path + "." + tag, required: spec.enforce });
      select.appendChild(make("option", { value: "", text: spec.required ? "— choose —" : "— (omitted)" }));
      names.forEach(function (n) { select.appendChild(make("option", { value: n, text: n })); });
      select.value = current || "";
      var holder = make("div", { class: "variant" });
      var variant = null;
      function render(chosen, values) {
        holder.textContent = "";
        variant = null;
        if (!chosen) return;
        variant = BUILDERS.object({
          name: chosen, path: spec.path, schema: deref({ $ref: mapping[chosen] }),
          required: true, enforce: true, skip: tag, top: true,
        }, values);
        holder.appendChild(variant.el);
      }
      select.addEventListener("change", function () {
        var carried = variant ? variant.get() : {};
        render(select.value, carried);
      });
      render(current, value);
      var tagField = wrap({ name: tag, required: true }, select, "");
      return {
        el: fieldset(spec, spec.name, [tagField, holder]),
        get: function () {
          if (!variant) return undefined;
          var out = {};
          out[tag] = select.value;
          return Object.assign(out, variant.get());
        },
      };
    },

    json: function (spec, value) {
      var control = make("textarea", { id: newId(), class: "json-field", rows: 3, spellcheck: "false", "data-path": spec.path });
      control.value = value === undefined ? "" : JSON.stringify(value, null, 2);
      function parsed() {
        var text = control.value.trim();
        if (text === "") return { ok: true, value: undefined };
        try { return { ok: true, value: JSON.parse(text) }; } catch (e) { return { ok: false, message: e.message }; }
      }
      function check() {
        var p = parsed();
        control.setCustomValidity(p.ok ? "" : "not JSON: " + p.message);
        if (spec.enforce && p.ok && p.value === undefined) control.setCustomValidity("required");
      }
      control.addEventListener("input", check);
      check();
      return {
        el: wrap(spec, control, helpText(spec, "as JSON")),
        get: function () { var p = parsed(); return p.ok ? p.value : undefined; },
      };
    },
  };

  // ---- the page

  function status(text) {
    jsonStatus.textContent = text || "";
    jsonStatus.hidden = !text;
  }

  function parseBody() {
    var text = body.value.trim();
    if (text === "") return { ok: true, value: {} };
    try {
      var value = JSON.parse(text);
      if (!isObject(value)) return { ok: false, message: "not a JSON object" };
      return { ok: true, value: value };
    } catch (e) {
      return { ok: false, message: e.message };
    }
  }

  function render(type, value) {
    var name = types[type];
    fields.textContent = "";
    root = null;
    if (!name) return;
    var schema = defs[name];
    typeHelp.textContent = plain(schema.description);
    typeHelp.hidden = !schema.description;
    root = BUILDERS.object({ name: type, path: "$", schema: schema, required: true, enforce: true, skip: "type", top: true }, value);
    fields.appendChild(root.el);
    if (!Object.keys(schema.properties).some(function (k) { return k !== "type"; })) {
      fields.appendChild(make("p", { class: "help", text: "This command has no fields." }));
    }
    markError();
  }

  function writeBody() {
    if (root) body.value = JSON.stringify(root.get(), null, 2);
  }

  function onFormEdit(event) {
    lastEdited = "form";
    writeBody();
    status("");
    var target = event.target;
    var marked = target && target.closest ? target.closest(".invalid") : null;
    if (marked) {
      marked.classList.remove("invalid");
      marked.removeAttribute("aria-invalid");
      errorCleared = true;
    }
  }

  function onBodyEdit() {
    lastEdited = "json";
    if (!defs) return;
    var parsed = parseBody();
    if (parsed.ok) {
      render(typeSelect.value, parsed.value);
      status("");
    } else {
      status("The JSON is not valid (" + parsed.message + "): the form was not updated. The JSON is what will be submitted.");
    }
  }

  function onTypeChange() {
    if (!defs) return;
    var carried = root ? root.get() : {};
    var schema = defs[types[typeSelect.value]];
    var kept = {};
    // a field of the same name carries over; the old type's other fields do not
    if (schema) Object.keys(carried).forEach(function (k) { if (has(schema.properties, k) && k !== "type") kept[k] = carried[k]; });
    errorCleared = true;  // the server's error was about the type that was sent
    render(typeSelect.value, kept);
    lastEdited = "form";
    writeBody();
    status("");
  }

  function setMode(json, rerender) {
    jsonMode = json;
    jsonToggle.querySelector("input").checked = json;
    fields.hidden = json;
    typeHelp.hidden = json || !typeHelp.textContent;
    form.classList.toggle("json-mode", json);
    try { window.sessionStorage.setItem(MODE_KEY, json ? "1" : ""); } catch (e) { /* storage off: the mode is not kept */ }
    if (!json && rerender && defs) {
      var parsed = parseBody();
      if (parsed.ok) render(typeSelect.value, parsed.value);
    }
    markError();
  }

  function onSubmit(event) {
    if (!root || jsonMode || lastEdited !== "form") return;  // the JSON as typed
    var controls = fields.querySelectorAll("input, select, textarea");
    for (var i = 0; i < controls.length; i += 1) {
      if (!controls[i].checkValidity()) {
        event.preventDefault();
        controls[i].reportValidity();
        return;
      }
    }
    writeBody();
  }

  // The server names the offending field by its JSON path; mark the deepest input that has it.
  function markError() {
    Array.prototype.forEach.call(form.querySelectorAll(".invalid"), function (node) {
      node.classList.remove("invalid");
      node.removeAttribute("aria-invalid");
    });
    if (!error || errorCleared) return;
    var path = error.path;
    var missing = /missing required field `([^`]+)`/.exec(error.message);
    if (missing) path = path + "." + missing[1];
    while (path) {
      // in JSON mode the form is hidden: the textarea ("$") is marked instead
      var found = Array.prototype.filter.call(form.querySelectorAll("[data-path]"), function (node) {
        return node.getAttribute("data-path") === path && !(fields.hidden && fields.contains(node));
      });
      if (found.length) {
        var target = found[0];
        target.classList.add("invalid");
        target.setAttribute("aria-invalid", "true");
        var described = (target.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (described.indexOf("error") < 0) target.setAttribute("aria-describedby", ["error"].concat(described).join(" "));
        return;
      }
      var parent = /^(.*)(\.[^.[\]]+|\[\d+\])$/.exec(path);
      path = parent ? parent[1] : "";
    }
  }

  function start(schema) {
    defs = schema.$defs;
    types = schema.types;
    var parsed = parseBody();
    render(typeSelect.value, parsed.ok ? parsed.value : {});
    if (!parsed.ok) status("The JSON is not valid (" + parsed.message + "): the form starts empty. The JSON is what will be submitted.");
    fields.hidden = false;
    jsonToggle.hidden = false;
    var saved = "";
    try { saved = window.sessionStorage.getItem(MODE_KEY) || ""; } catch (e) { saved = ""; }
    setMode(saved === "1", false);
    form.setAttribute("data-ready", "true");
  }

  document.addEventListener("DOMContentLoaded", function () {
    form = document.getElementById("submit-form");
    if (!form) return;
    typeSelect = document.getElementById("type");
    typeHelp = document.getElementById("type-help");
    fields = document.getElementById("fields");
    body = document.getElementById("body");
    jsonStatus = document.getElementById("json-status");
    jsonToggle = document.getElementById("json-toggle");
    var path = document.getElementById("error-path");
    var message = document.getElementById("error-message");
    if (path) error = { path: path.textContent.trim(), message: message ? message.textContent : "" };

    // the script validates the generated inputs itself, and not when the JSON is what is sent
    form.noValidate = true;
    fields.addEventListener("input", onFormEdit);
    fields.addEventListener("change", onFormEdit);
    body.addEventListener("input", onBodyEdit);
    typeSelect.addEventListener("change", onTypeChange);
    form.addEventListener("submit", onSubmit);
    jsonToggle.querySelector("input").addEventListener("change", function (event) { setMode(event.target.checked, true); });

    fetch(form.getAttribute("data-schema"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(start)
      .catch(function (err) {
        markError();  // on the type selector or the textarea, the only inputs there are
        status("The form could not be generated (" + err.message + "): edit the JSON.");
      });
  });
})();
