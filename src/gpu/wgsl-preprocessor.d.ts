declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  export function wgsl(strings: TemplateStringsArray | readonly string[], ...values: unknown[]): string;
}
