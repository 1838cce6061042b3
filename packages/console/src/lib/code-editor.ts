/**
 * CodeMirror 6 set up the way every editor of the console wants it: line numbers, undo history,
 * bracket matching, completion, a highlight style whose colours come from the page's light or dark
 * palette (CSS variables), and an accessible name. Loaded only with the pages that edit code.
 */
import {
  autocompletion,
  closeBrackets,
  closeCompletion,
  closeBracketsKeymap,
  completionKeymap,
} from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { HighlightStyle, bracketMatching, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { Compartment, EditorState, Prec, type Extension } from '@codemirror/state';
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
  placeholder as placeholderText,
} from '@codemirror/view';
import { tags } from '@lezer/highlight';

/**
 * CodeMirror adds its styles as style elements, which the page's Content-Security-Policy admits only
 * with the nonce the server wrote into the page.
 */
function cspNonce(): string {
  const nonce = document.querySelector('meta[name="csp-nonce"]')?.getAttribute('content') ?? '';
  return nonce.startsWith('__') ? '' : nonce;
}

const highlight = HighlightStyle.define([
  { tag: [tags.keyword, tags.operatorKeyword, tags.modifier], color: 'var(--hl-keyword)' },
  { tag: [tags.string, tags.special(tags.string)], color: 'var(--hl-string)' },
  { tag: [tags.number, tags.bool, tags.null], color: 'var(--hl-number)' },
  {
    tag: [tags.comment, tags.lineComment, tags.blockComment],
    color: 'var(--hl-comment)',
    fontStyle: 'italic',
  },
  { tag: [tags.typeName, tags.standard(tags.name)], color: 'var(--hl-type)' },
  { tag: [tags.name, tags.propertyName, tags.variableName], color: 'var(--hl-name)' },
]);

const theme = EditorView.theme({
  '&': { backgroundColor: 'var(--bg-raised)', color: 'var(--fg)' },
  '.cm-content': { caretColor: 'var(--fg)', fontFamily: 'ui-monospace, Menlo, Consolas, monospace' },
  '.cm-gutters': {
    backgroundColor: 'var(--bg-alt)',
    color: 'var(--fg-muted)',
    borderRight: '1px solid var(--border)',
  },
  '.cm-activeLine, .cm-activeLineGutter': { backgroundColor: 'var(--row-alt)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground': { backgroundColor: 'var(--update-bg)' },
  '.cm-tooltip': {
    backgroundColor: 'var(--bg-raised)',
    color: 'var(--fg)',
    border: '1px solid var(--border)',
  },
  '.cm-tooltip-autocomplete ul li[aria-selected]': { backgroundColor: 'var(--focus)', color: 'var(--bg)' },
  '.cm-placeholder': { color: 'var(--fg-muted)' },
});

export interface CodeEditorOptions {
  parent: HTMLElement;
  doc: string;
  label: string;
  language: Extension;
  placeholder?: string;
  /** Ctrl-Enter / Cmd-Enter. */
  onRun?: () => void;
  onChange?: (doc: string) => void;
}

export interface CodeEditor {
  view: EditorView;
  /** Swaps the language (new completion schema, for instance). */
  setLanguage(language: Extension): void;
  getText(): string;
  setText(text: string): void;
  destroy(): void;
}

export function createCodeEditor(options: CodeEditorOptions): CodeEditor {
  const language = new Compartment();
  const runKeys = options.onRun
    ? Prec.highest(
        keymap.of([
          {
            key: 'Mod-Enter',
            preventDefault: true,
            run: (view) => {
              closeCompletion(view);
              options.onRun?.();
              return true;
            },
          },
        ]),
      )
    : [];
  const view = new EditorView({
    parent: options.parent,
    state: EditorState.create({
      doc: options.doc,
      extensions: [
        runKeys,
        EditorView.cspNonce.of(cspNonce()),
        lineNumbers(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        autocompletion(),
        highlightActiveLine(),
        syntaxHighlighting(highlight),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap]),
        theme,
        language.of(options.language),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'aria-label': options.label }),
        options.placeholder ? placeholderText(options.placeholder) : [],
        EditorView.updateListener.of((update) => {
          if (update.docChanged) options.onChange?.(update.state.doc.toString());
        }),
      ],
    }),
  });
  return {
    view,
    setLanguage: (next) => view.dispatch({ effects: language.reconfigure(next) }),
    getText: () => view.state.doc.toString(),
    setText: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    destroy: () => view.destroy(),
  };
}
