"""The paper exchange process: hosts `exchange.paper.PaperExchange` and serves it over RPC."""
