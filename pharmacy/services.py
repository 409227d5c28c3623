def prescription_propose_for_screening(*, screening_id: int) -> None:
    return None
