// The rule set as forms: a card per rule (conditions as rows, the action with its processor's
// parameters as typed inputs from the processor's JSON Schema), kept in step with the JSON view.
// Every control carries the JSON pointer of what it edits (data-pointer), so each error of the
// validator is shown at the field it concerns. Nothing here builds HTML from text (see h()).
"use strict";

const RulesForm = (() => {
  let model = { rules: [] };
  let context = { processors: [], destinations: [], readOnly: false };
  let container = null;
  let changed = () => {};

  const OPERATORS = [
    ["equals", "equals"], ["not-equals", "does not equal"], ["in", "is one of (comma-separated)"],
    ["contains", "contains"], ["regex", "matches the regular expression"], ["greater", "is greater than"],
    ["less", "is less than"], ["range", "is between"], ["exists", "is present"], ["missing", "is missing"]];
  const TEXT_OPERATORS = ["equals", "not-equals", "in", "contains", "regex"];
  const NUMERIC_OPERATORS = ["greater", "less", "range"];
  const ANONYMIZE_OPTIONS = ["retain-safe-private", "retain-uids", "retain-device-identity", "retain-institution-identity",
    "retain-patient-characteristics", "full-dates", "modified-dates", "clean-descriptors", "clean-structured-content",
    "clean-graphics", "allow-recognizable-features"];

  // JSON pointers (RFC 6901) into the model.
  const tokens = (pointer) => pointer.split("/").slice(1).map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
  const escape = (token) => String(token).replaceAll("~", "~0").replaceAll("/", "~1");
  function getAt(pointer) {
    let value = model;
    for (const t of tokens(pointer)) {
      if (value === null || typeof value !== "object") return undefined;
      value = value[t];
    }
    return value;
  }
  // Sets the value at `pointer`, making the objects above it; undefined removes it (an array
  // element is spliced out), and a "parameters" object left empty goes with it.
  function setAt(pointer, value) {
    const path = tokens(pointer);
    const last = path.pop();
    let parent = model;
    for (const t of path) {
      if (parent[t] === null || typeof parent[t] !== "object") {
        if (value === undefined) return;
        parent[t] = {};
      }
      parent = parent[t];
    }
    if (value !== undefined) {
      parent[last] = value;
    } else if (Array.isArray(parent)) {
      parent.splice(Number(last), 1);
    } else {
      delete parent[last];
      if (path[path.length - 1] === "parameters" && Object.keys(parent).length === 0) setAt(pointer.slice(0, pointer.lastIndexOf("/")), undefined);
    }
  }

  // A field edit: the model changes, the JSON view follows, the form stays as it is (focus kept).
  const edited = () => changed(model);
  // A change of shape (a row added, removed or moved; an operator changed): the form is drawn again
  // and the focus goes to the control of `focusPointer`, so the keyboard user stays in place.
  function restructured(focusPointer) {
    render();
    edited();
    if (focusPointer) {
      const target = container.querySelector(`[data-pointer="${CSS.escape(focusPointer)}"]`);
      if (target) (target.matches("input, select, button, textarea") ? target : target.querySelector("input, select, button") || target).focus();
    }
  }

  // Controls. Each gets its pointer, an accessible name and, for the empty value, the default.
  const labelled = (label, control, hint) => h("label", { className: "field" },
    h("span", { className: "field-label" }, label), control, hint && h("span", { className: "field-hint" }, hint));
  // Several controls under one name (check boxes): a group, since labels cannot nest.
  const grouped = (label, content) => h("div", { className: "field", role: "group", ariaLabel: label },
    h("span", { className: "field-label" }, label), content);

  function textInput(pointer, name, { placeholder = "", list = "", convert = (x) => x, wide = false } = {}) {
    const value = getAt(pointer);
    const input = h("input", { type: "text", value: value === undefined ? "" : String(value), placeholder, ariaLabel: name,
      className: wide ? "wide" : "", dataset: { pointer } });
    if (list) input.setAttribute("list", list);
    input.addEventListener("input", () => { setAt(pointer, input.value === "" ? undefined : convert(input.value)); edited(); });
    return input;
  }

  function numberInput(pointer, name, { min, max, integer = false, placeholder = "" } = {}) {
    const value = getAt(pointer);
    const input = h("input", { type: "number", value: value === undefined ? "" : String(value), placeholder, ariaLabel: name,
      step: integer ? "1" : "any", dataset: { pointer } });
    if (min !== undefined) input.min = String(min);
    if (max !== undefined) input.max = String(max);
    input.addEventListener("input", () => {
      const number = input.value === "" ? undefined : Number(input.value);
      setAt(pointer, number === undefined || Number.isNaN(number) ? undefined : number);
      edited();
    });
    return input;
  }

  // A select over [value, label] pairs; the "" option removes the key (the default applies).
  function selectInput(pointer, name, options, { convert = (x) => x, shape = false } = {}) {
    const value = getAt(pointer);
    const select = h("select", { ariaLabel: name, dataset: { pointer } },
      options.map(([v, label]) => h("option", { value: v, selected: String(value === undefined ? "" : value) === v }, label)));
    select.addEventListener("change", () => {
      setAt(pointer, select.value === "" ? undefined : convert(select.value));
      if (shape) restructured(pointer); else edited();
    });
    return select;
  }

  // A boolean with a default: the key is written only when it differs from the default.
  function checkbox(pointer, name, defaultValue) {
    const value = getAt(pointer);
    const box = h("input", { type: "checkbox", checked: value === undefined ? defaultValue : value === true, dataset: { pointer } });
    box.addEventListener("change", () => { setAt(pointer, box.checked === defaultValue ? undefined : box.checked); edited(); });
    return h("label", { className: "check" }, box, name);
  }

  const button = (label, title, onClick, className = "small") => {
    const b = h("button", { type: "button", className, title }, label);
    b.addEventListener("click", onClick);
    return b;
  };

  // Conditions: a group (all of / any of / not) of rows, or one attribute test.
  const kindOf = (c) => (c && typeof c === "object" ? ["all", "any", "not"].find((k) => k in c) : undefined) || "test";
  const numeric = (text) => (/^\s*-?\d+(\.\d+)?\s*$/.test(text) ? Number(text) : text);

  function convertValue(old, operator) {
    if (operator === "exists" || operator === "missing") return true;
    if (operator === "in") return Array.isArray(old) ? old : old === undefined || old === true ? [] : [old];
    if (operator === "range") return Array.isArray(old) && old.length === 2 ? old : ["", ""];
    const scalar = Array.isArray(old) ? old[0] : old === true || old === undefined ? "" : old;
    return NUMERIC_OPERATORS.includes(operator) && typeof scalar === "string" ? numeric(scalar) : scalar;
  }

  function testRow(pointer, onRemove) {
    const test = getAt(pointer);
    const operator = OPERATORS.map(([o]) => o).find((o) => o in test) || "equals";
    const valuePointer = `${pointer}/${escape(operator)}`;
    const operatorSelect = h("select", { ariaLabel: "Operator", dataset: { pointer: `${pointer}/operator` } },
      OPERATORS.map(([o, label]) => h("option", { value: o, selected: o === operator }, label)));
    operatorSelect.addEventListener("change", () => {
      const old = test[operator];
      delete test[operator];
      test[operatorSelect.value] = convertValue(old, operatorSelect.value);
      if (!TEXT_OPERATORS.includes(operatorSelect.value)) delete test.case_sensitive;
      restructured(`${pointer}/operator`);
    });
    let value;
    if (operator === "exists" || operator === "missing") {
      value = h("span", { className: "muted value-none" }, "(no value)");
    } else if (operator === "in") {
      const list = test.in || [];
      value = h("input", { type: "text", value: list.join(", "), ariaLabel: "Values, comma-separated", placeholder: "CHEST, LUNG",
        dataset: { pointer: valuePointer } });
      value.addEventListener("input", () => {
        test.in = value.value.split(",").map((v) => v.trim()).filter((v) => v !== "");
        edited();
      });
    } else if (operator === "range") {
      value = h("span", { className: "range" },
        textInput(`${valuePointer}/0`, "Lowest value", { convert: numeric, placeholder: "from" }), " and ",
        textInput(`${valuePointer}/1`, "Highest value", { convert: numeric, placeholder: "to" }));
    } else {
      value = textInput(valuePointer, "Value", { convert: NUMERIC_OPERATORS.includes(operator) ? numeric : (x) => x,
        placeholder: operator === "regex" ? ".*(chest|thorax).*" : "value" });
    }
    return h("div", { className: "condition-test", dataset: { pointer } },
      textInput(`${pointer}/attribute`, "DICOM attribute", { list: "dicom-keywords", placeholder: "attribute (Modality, (0018,0015), CallingAET)" }),
      operatorSelect, value,
      TEXT_OPERATORS.includes(operator) && h("label", { className: "check" },
        (() => {
          const box = h("input", { type: "checkbox", checked: test.case_sensitive === false, dataset: { pointer: `${pointer}/case_sensitive` } });
          box.addEventListener("change", () => { if (box.checked) test.case_sensitive = false; else delete test.case_sensitive; edited(); });
          return box;
        })(), "ignore case"),
      onRemove && button("✕", "Remove this condition", onRemove));
  }

  const newTest = () => ({ attribute: "", equals: "" });

  function conditionEditor(pointer, onRemove) {
    const condition = getAt(pointer);
    const kind = kindOf(condition);
    if (kind === "test") {
      // A lone test: adding a second one makes it an "all of" group.
      return h("div", { className: "condition-group", dataset: { pointer: `${pointer}/group` } },
        testRow(pointer, onRemove),
        !onRemove && h("div", { className: "group-actions" },
          button("+ condition", "Add a condition (both must hold)", () => {
            setAt(pointer, { all: [condition, newTest()] });
            restructured(`${pointer}/all/1/attribute`);
          })));
    }
    const children = kind === "not" ? [`${pointer}/not`] : condition[kind].map((_, i) => `${pointer}/${kind}/${i}`);
    const kindSelect = h("select", { ariaLabel: "Group kind", dataset: { pointer: `${pointer}/kind` } },
      [["all", "all of"], ["any", "any of"], ["not", "not"]].map(([k, label]) => h("option", { value: k, selected: k === kind }, label)));
    kindSelect.addEventListener("change", () => {
      const items = kind === "not" ? [condition.not] : condition[kind];
      const to = kindSelect.value;
      setAt(pointer, to === "not" ? { not: items.length === 1 ? items[0] : { all: items } } : { [to]: items });
      restructured(`${pointer}/kind`);
    });
    const add = (template, what) => () => {
      condition[kind].push(template);
      restructured(`${pointer}/${kind}/${condition[kind].length - 1}${what}`);
    };
    return h("fieldset", { className: "condition-group", dataset: { pointer } },
      h("legend", {}, kindSelect, onRemove && button("✕", "Remove this group", onRemove)),
      children.map((child) => conditionEditor(child, kind === "not" ? null : () => { setAt(child, undefined); restructured(`${pointer}/kind`); })),
      kind !== "not" && h("div", { className: "group-actions" },
        button("+ condition", "Add a condition to this group", add(newTest(), "/attribute")),
        button("+ group", "Add a group of conditions", add({ any: [newTest()] }, "/kind"))));
  }

  // The processor's parameters, one typed input per property of its JSON Schema.
  function parameterInputs(pointer, processor) {
    const properties = (processor && processor.parameters && processor.parameters.properties) || {};
    const given = getAt(pointer) || {};
    const rows = Object.entries(properties).map(([name, schema]) => {
      const p = `${pointer}/${escape(name)}`;
      const fallback = schema.default === undefined ? "none" : String(schema.default);
      let control;
      if (Array.isArray(schema.enum)) {
        control = selectInput(p, name, [["", `default (${fallback})`], ...schema.enum.map((v) => [String(v), String(v)])],
          { convert: (v) => schema.enum.find((e) => String(e) === v) });
      } else if (schema.type === "boolean") {
        control = selectInput(p, name, [["", `default (${fallback === "true" ? "yes" : "no"})`], ["true", "yes"], ["false", "no"]],
          { convert: (v) => v === "true" });
      } else if (schema.type === "number" || schema.type === "integer") {
        control = numberInput(p, name, { min: schema.minimum, max: schema.maximum, integer: schema.type === "integer",
          placeholder: `default ${fallback}` });
      } else {
        control = textInput(p, name, { placeholder: `default ${fallback}` });
      }
      const range = schema.minimum !== undefined || schema.maximum !== undefined ? ` (${schema.minimum ?? "…"} to ${schema.maximum ?? "…"})` : "";
      return labelled(name + range, control, schema.description);
    });
    // Keys the schema does not know: the validator names them; shown so they can be removed.
    const unknown = Object.keys(given).filter((k) => !(k in properties)).map((k) => h("div", { className: "unknown-parameter",
      dataset: { pointer: `${pointer}/${escape(k)}` } }, h("code", {}, `${k} = ${JSON.stringify(given[k])}`),
      button("✕", `Remove ${k}`, () => { setAt(`${pointer}/${escape(k)}`, undefined); restructured(pointer); })));
    return h("div", { className: "parameters", dataset: { pointer } },
      rows.length ? rows : h("span", { className: "muted" }, processor ? "no parameters" : "choose a processor"), unknown);
  }

  function anonymizeEditor(pointer) {
    const value = getAt(pointer);
    const mode = value === true ? "basic" : value && typeof value === "object" ? "project" : "";
    const select = h("select", { ariaLabel: "Anonymize", dataset: { pointer } },
      [["", "no: results are clinical"], ["basic", "yes: PS3.15 basic profile"], ["project", "yes: for a research project, with options"]]
        .map(([v, label]) => h("option", { value: v, selected: v === mode }, label)));
    select.addEventListener("change", () => {
      setAt(pointer, select.value === "basic" ? true : select.value === "project" ? { project: "" } : undefined);
      restructured(pointer);
    });
    if (mode !== "project") return labelled("Anonymize", select);
    const options = value.options || [];
    return h("div", { className: "anonymize" }, labelled("Anonymize", select),
      labelled("Project", textInput(`${pointer}/project`, "Project", { placeholder: "e.g. LUNG-COHORT" }),
        "pseudonyms, UIDs and date shifts are per project"),
      labelled("Results", selectInput(`${pointer}/results`, "Results", [["", "pseudonymous (default)"], ["clinical", "clinical"]])),
      grouped("Options", h("div", { className: "checks", dataset: { pointer: `${pointer}/options` } }, ANONYMIZE_OPTIONS.map((o) => {
        const box = h("input", { type: "checkbox", checked: options.includes(o) });
        box.addEventListener("change", () => {
          const next = ANONYMIZE_OPTIONS.filter((x) => (x === o ? box.checked : (value.options || []).includes(x)));
          setAt(`${pointer}/options`, next.length ? next : undefined);
          edited();
        });
        return h("label", { className: "check" }, box, o);
      }))));
  }

  function destinationsEditor(pointer) {
    const chosen = getAt(pointer) || [];
    const names = [...new Set([...context.destinations.map((d) => d.name), ...chosen])];
    if (!names.length) return grouped("Destinations", h("span", { className: "muted" }, "none configured (ProcNode.Destinations)"));
    return grouped("Destinations", h("div", { className: "checks", dataset: { pointer } }, names.map((name) => {
      const known = context.destinations.find((d) => d.name === name);
      const box = h("input", { type: "checkbox", checked: chosen.includes(name), dataset: { destination: name } });
      box.addEventListener("change", () => {
        const next = names.filter((n) => (n === name ? box.checked : (getAt(pointer) || []).includes(n)));
        setAt(pointer, next.length ? next : undefined);
        edited();
      });
      return h("label", { className: "check" }, box, name, h("span", { className: "muted" }, known ? ` (${known.kind})` : " (not configured)"));
    })));
  }

  function ruleCard(index) {
    const p = `/rules/${index}`;
    const rule = model.rules[index];
    const count = model.rules.length;
    const move = (to) => () => {
      const [moved] = model.rules.splice(index, 1);
      model.rules.splice(to, 0, moved);
      restructured(`/rules/${to}/id`);
    };
    const action = rule.action || {};
    const processor = context.processors.find((x) => x.name === action.pipeline);
    const pipelines = [...new Set([...context.processors.map((x) => x.name), ...(action.pipeline ? [action.pipeline] : [])])];
    const pipelineSelect = h("select", { ariaLabel: "Processor", dataset: { pointer: `${p}/action/pipeline` } },
      !action.pipeline && h("option", { value: "", selected: true }, "choose…"),
      pipelines.map((name) => h("option", { value: name, selected: name === action.pipeline }, name)));
    pipelineSelect.addEventListener("change", () => {
      setAt(`${p}/action/pipeline`, pipelineSelect.value);
      setAt(`${p}/action/parameters`, undefined);  // another processor's parameters do not carry over
      restructured(`${p}/action/pipeline`);
    });
    const waitFor = rule.wait_for;
    const waitBox = h("input", { type: "checkbox", checked: waitFor !== undefined, dataset: { pointer: `${p}/wait_for` } });
    waitBox.addEventListener("change", () => {
      setAt(`${p}/wait_for`, waitBox.checked ? { series: { attribute: "SeriesDescription", contains: "" } } : undefined);
      restructured(`${p}/wait_for`);
    });
    return h("article", { className: rule.enabled === false ? "rule-card disabled" : "rule-card", dataset: { pointer: p } },
      h("div", { className: "rule-head" },
        h("h3", {}, `Rule ${index + 1}`),
        labelled("Id", textInput(`${p}/id`, "Rule id", { placeholder: "chest-ct" })),
        checkbox(`${p}/enabled`, "enabled", true),
        h("span", { className: "rule-buttons" },
          Object.assign(button("↑", "Move up (earlier among rules of the same priority)", move(index - 1)), { disabled: index === 0 }),
          Object.assign(button("↓", "Move down", move(index + 1)), { disabled: index === count - 1 }),
          button("Remove rule", "Remove this rule", () => { model.rules.splice(index, 1); restructured(index > 0 ? `/rules/${index - 1}/id` : "/description"); }))),
      h("div", { className: "rule-fields" },
        labelled("Description", textInput(`${p}/description`, "Description", { wide: true, placeholder: "what the rule is for" })),
        labelled("Priority", numberInput(`${p}/priority`, "Rule priority", { integer: true, placeholder: "0" }), "higher is evaluated first"),
        labelled("Level", selectInput(`${p}/level`, "Level", [["", "study (one job per study)"], ["series", "series (one job per series)"]])),
        checkbox(`${p}/fallback`, "fallback: fires only when no other rule fired", false)),
      h("h4", {}, "When"),
      conditionEditor(`${p}/match`, null),
      h("label", { className: "check" }, waitBox, "wait for a series to arrive"),
      waitFor && h("div", { className: "wait-for" },
        conditionEditor(`${p}/wait_for/series`, null),
        labelled("At most (s)", numberInput(`${p}/wait_for/max_wait_seconds`, "Longest wait in seconds", { min: 0, max: 86400, integer: true, placeholder: "600" }))),
      h("h4", {}, "Then"),
      h("div", { className: "rule-fields" },
        labelled("Processor", pipelineSelect, processor ? processor.description : ""),
        labelled("Device", selectInput(`${p}/action/device`, "Device", [["", "auto (GPU where there is one)"], ["cpu", "CPU"], ["gpu", "GPU only"]])),
        labelled("Job priority", numberInput(`${p}/action/priority`, "Job priority", { integer: true, placeholder: "0" }))),
      h("h4", {}, "Parameters"),
      parameterInputs(`${p}/action/parameters`, processor),
      h("div", { className: "rule-fields" }, destinationsEditor(`${p}/action/destinations`), anonymizeEditor(`${p}/action/anonymize`)),
      action.bids && h("p", { className: "muted", dataset: { pointer: `${p}/action/bids` } },
        `BIDS placement: ${action.bids.length} entr${action.bids.length === 1 ? "y" : "ies"} (edited in the JSON view).`));
  }

  function render() {
    if (!container) return;
    if (!Array.isArray(model.rules)) model.rules = [];
    const addRule = button("+ Add rule", "Add a rule at the end", () => {
      const first = context.processors[0];
      model.rules.push({ id: `rule-${model.rules.length + 1}`, match: { all: [{ attribute: "Modality", equals: "" }] },
        action: { pipeline: first ? first.name : "" } });
      restructured(`/rules/${model.rules.length - 1}/id`);
    }, "");
    container.replaceChildren(h("div", { dataset: { pointer: "" } },
      h("div", { className: "rule-fields" },
        labelled("Rule set", textInput("/description", "Rule set description", { wide: true, placeholder: "what this rule set is for" })),
        labelled("Mode", selectInput("/mode", "Mode", [["", "all: every matching rule fires"], ["first-match", "first match only"]]))),
      model.rules.map((_, i) => ruleCard(i)),
      h("div", { className: "row" }, addRule)));
    if (context.readOnly) container.querySelectorAll("input, select, button").forEach((e) => { e.disabled = true; });
  }

  // Each error at the control of its pointer, or of the nearest pointer above it that has one.
  function showErrors(errors) {
    if (!container) return;
    container.querySelectorAll(".field-error").forEach((e) => e.remove());
    container.querySelectorAll("[aria-invalid]").forEach((e) => { e.removeAttribute("aria-invalid"); e.classList.remove("field-invalid"); });
    for (const error of errors) {
      let pointer = error.pointer || "";
      let target = null;
      for (;;) {
        target = container.querySelector(`[data-pointer="${CSS.escape(pointer)}"]`);
        if (target || pointer === "") break;
        pointer = pointer.slice(0, pointer.lastIndexOf("/"));
      }
      if (!target) target = container.firstElementChild || container;
      target.classList.add("field-invalid");
      target.setAttribute("aria-invalid", "true");
      const message = h("span", { className: "field-error", dataset: { pointer: error.pointer || "/" } }, error.reason);
      // In a condition's row the message ends the row; beside other controls it follows them.
      if (target.matches("input, select") && target.parentElement.matches(".condition-test")) target.parentElement.append(message);
      else if (target.matches("input, select")) target.after(message);
      else target.prepend(message);
    }
  }

  return {
    attach(element, onChange) { container = element; changed = onChange; },
    setModel(value) { model = value && typeof value === "object" && !Array.isArray(value) ? value : { rules: [] }; render(); },
    // Drawn again only when something changed: the status is polled, and a form redrawn under the
    // user's hands would lose their focus and what they are typing.
    setContext(next) {
      const merged = { ...context, ...next };
      if (JSON.stringify(merged) === JSON.stringify(context)) return;
      context = merged;
      render();
    },
    showErrors,
  };
})();
