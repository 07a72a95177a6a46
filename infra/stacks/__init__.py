"""The three stacks. They only compose constructs and pass references between them."""
