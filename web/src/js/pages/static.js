// Static pages (not found, forbidden) need no script; this module keeps the layout uniform.
export {};
