"""Request and response shapes of the REST API (`XCreate`, `XUpdate`, `XPublic`), one module
per domain, as the services are grouped."""
