"""One module per public API area; each exposes `routes: web.RouteTableDef`."""
