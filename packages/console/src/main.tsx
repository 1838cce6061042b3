/** The console's entry: styles, theme, and the app. Pages load on demand (see app.tsx). */
import { render } from 'preact';
import './styles.css';
import { applyTheme, savedTheme } from './lib/theme.ts';
import { App } from './app.tsx';

applyTheme(savedTheme());
render(<App />, document.getElementById('app')!);
