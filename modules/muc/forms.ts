// Data forms (XEP-0004) as the room needs them: the shared helpers (src/xml/data-forms.ts).
export { field, form, readForm, formType, findForm, parseBoolean, first, type FieldType, type FieldSpec, type Submitted } from '../../src/xml/data-forms.js';
