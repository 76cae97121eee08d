"""The HTTP API (`nurture serve`): a top layer beside nurture.cli; core modules never import it."""
