"""RecommendationService over gRPC: proto in, one handler, proto out."""

from __future__ import annotations

import grpc
from switchyard.recommendation.v1 import recommendation_pb2, recommendation_pb2_grpc
from switchyard_kit import caller_user_id
from typing_extensions import override

from recommendation_service.service_layer.handlers import RecommendationQueries

SERVICE_NAME = recommendation_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name


class RecommendationServicer(recommendation_pb2_grpc.RecommendationServiceServicer):
    def __init__(self, queries: RecommendationQueries) -> None:
        self.queries = queries

    @override
    def GetRecommendations(
        self, request: recommendation_pb2.GetRecommendationsRequest, context: grpc.ServicerContext
    ) -> recommendation_pb2.GetRecommendationsResponse:
        items = self.queries.recommend(caller_user_id(context), request.limit)
        return recommendation_pb2.GetRecommendationsResponse(
            items=[
                recommendation_pb2.Recommendation(sku=i.sku, score=i.score, source=i.source)
                for i in items
            ]
        )
