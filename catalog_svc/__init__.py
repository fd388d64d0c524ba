"""Catalog service: products and stock, lowered once per consumed order event."""
