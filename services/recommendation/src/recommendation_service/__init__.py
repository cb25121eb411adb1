"""The recommendation service: learns from payment events, answers GetRecommendations.

`python -m recommendation_service [serve|migrate|worker|rebuild]`; see README.md.
"""
