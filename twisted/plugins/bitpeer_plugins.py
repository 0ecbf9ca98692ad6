from twisted.application.service import ServiceMaker

bitpeerCrawl = ServiceMaker("bitpeer crawler", "bitpeer.crawl.tap", "Crawl the Bitcoin P2P network", "bitpeer-crawl")
bitpeerSimnet = ServiceMaker("bitpeer simnet", "bitpeer.simnet.tap", "A simulated Bitcoin network on loopback", "bitpeer-simnet")
bitpeerSeed = ServiceMaker("bitpeer seeder", "bitpeer.seed.tap", "A DNS seeder: watch every node, serve the good ones", "bitpeer-seed")
