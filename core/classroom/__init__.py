"""The classroom: identities, access rules, limits and the class overview."""
