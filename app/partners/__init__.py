"""Store systems (POS, ERP, e-commerce) that call the open API with HMAC signatures."""
