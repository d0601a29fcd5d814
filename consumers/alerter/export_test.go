package alerter

// EpisodeID is episodeID, for tests that stand in for another replica.
var EpisodeID = episodeID
