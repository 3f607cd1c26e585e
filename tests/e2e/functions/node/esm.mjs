export const handler = async (event) => ({ module: 'esm', event });
