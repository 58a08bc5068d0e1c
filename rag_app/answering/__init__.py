"""Answering: question -> retrieve -> focus -> generate -> ground -> verify -> gate -> Answer."""
