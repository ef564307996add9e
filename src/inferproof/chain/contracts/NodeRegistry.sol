// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.20;

/// @title NodeRegistry: where attested inferproof nodes can be found.
/// @notice An entry maps a node key (its 32-byte Ed25519 public key) to the digest of
/// the node's identity document, its platform and its HTTP endpoint. The EVM cannot
/// check an Ed25519 signature cheaply, so this contract cannot tell whether the sender
/// holds the node key: entries are kept per (node key, sender), no sender can replace
/// or remove another's, and each carries the node's signature over a statement that
/// binds the chain, this contract, the sender and every field. Clients verify that
/// signature off chain and ignore the entries whose signature fails.
contract NodeRegistry {
    struct Entry {
        bytes32 identityDigest;
        uint64 blockNumber;
        string platform;
        string endpoint;
        bytes signature;
    }

    // Bounds, so no registrant can bloat an entry (every client reads them all).
    // Platform: a name such as "tdx" or "nitro"; 32 bytes leave room for new ones.
    uint256 public constant MAX_PLATFORM = 32;
    // Endpoint: an http(s) base URL. A DNS name is at most 253 octets (RFC 1035
    // section 2.3.4); with "https://", a port and a short path, 512 bytes is ample.
    uint256 public constant MAX_ENDPOINT = 512;
    // An Ed25519 signature is exactly 64 bytes (RFC 8032 section 5.1.6).
    uint256 public constant SIGNATURE_LENGTH = 64;

    bytes32[] private _keys;
    mapping(bytes32 => uint256) private _keyPosition; // index + 1; 0: no entry
    mapping(bytes32 => address[]) private _registrants;
    mapping(bytes32 => mapping(address => uint256)) private _position; // index + 1
    mapping(bytes32 => mapping(address => Entry)) private _entries;

    event Registered(
        bytes32 indexed key,
        address indexed registrant,
        bytes32 identityDigest,
        string platform,
        string endpoint
    );
    event Deregistered(bytes32 indexed key, address indexed registrant);

    error Empty();
    error PlatformTooLong(uint256 length);
    error EndpointTooLong(uint256 length);
    error BadSignatureLength(uint256 length);
    error NotPrintable();
    error NotRegistered();

    /// @notice Store (or replace) the sender's entry for node `key`.
    function register(
        bytes32 key,
        bytes32 identityDigest,
        string calldata platform,
        string calldata endpoint,
        bytes calldata signature
    ) external {
        bytes calldata p = bytes(platform);
        bytes calldata e = bytes(endpoint);
        if (p.length == 0 || e.length == 0) revert Empty();
        if (p.length > MAX_PLATFORM) revert PlatformTooLong(p.length);
        if (e.length > MAX_ENDPOINT) revert EndpointTooLong(e.length);
        if (signature.length != SIGNATURE_LENGTH) revert BadSignatureLength(signature.length);
        // Printable ASCII only: URLs are ASCII (RFC 3986; international host names
        // go as punycode) and so are platform names. It keeps control characters and
        // invalid UTF-8 out of every client's decoder and display.
        if (!_printable(p) || !_printable(e)) revert NotPrintable();
        if (_position[key][msg.sender] == 0) {
            if (_registrants[key].length == 0) {
                _keys.push(key);
                _keyPosition[key] = _keys.length;
            }
            _registrants[key].push(msg.sender);
            _position[key][msg.sender] = _registrants[key].length;
        }
        _entries[key][msg.sender] =
            Entry(identityDigest, uint64(block.number), platform, endpoint, signature);
        emit Registered(key, msg.sender, identityDigest, platform, endpoint);
    }

    /// @notice Remove the sender's entry for node `key` (others' entries stay).
    function deregister(bytes32 key) external {
        uint256 pos = _position[key][msg.sender];
        if (pos == 0) revert NotRegistered();
        address[] storage list = _registrants[key];
        address last = list[list.length - 1];
        list[pos - 1] = last;
        _position[key][last] = pos;
        list.pop();
        delete _position[key][msg.sender];
        delete _entries[key][msg.sender];
        if (list.length == 0) {
            uint256 kpos = _keyPosition[key];
            bytes32 lastKey = _keys[_keys.length - 1];
            _keys[kpos - 1] = lastKey;
            _keyPosition[lastKey] = kpos;
            _keys.pop();
            delete _keyPosition[key];
        }
        emit Deregistered(key, msg.sender);
    }

    /// @notice How many node keys have at least one entry.
    function keyCount() external view returns (uint256) {
        return _keys.length;
    }

    /// @notice The node keys at indexes [start, start + limit), fewer at the end.
    function keys(uint256 start, uint256 limit) external view returns (bytes32[] memory page) {
        uint256 n = _keys.length;
        uint256 count = start >= n ? 0 : (limit < n - start ? limit : n - start);
        page = new bytes32[](count);
        for (uint256 i = 0; i < count; i++) {
            page[i] = _keys[start + i];
        }
    }

    /// @notice How many senders hold an entry for node `key`.
    function registrantCount(bytes32 key) external view returns (uint256) {
        return _registrants[key].length;
    }

    /// @notice The senders holding an entry for `key`, indexes [start, start + limit).
    function registrants(bytes32 key, uint256 start, uint256 limit)
        external
        view
        returns (address[] memory page)
    {
        address[] storage list = _registrants[key];
        uint256 n = list.length;
        uint256 count = start >= n ? 0 : (limit < n - start ? limit : n - start);
        page = new address[](count);
        for (uint256 i = 0; i < count; i++) {
            page[i] = list[start + i];
        }
    }

    /// @notice The entry `registrant` holds for node `key`.
    function entry(bytes32 key, address registrant)
        external
        view
        returns (
            bytes32 identityDigest,
            string memory platform,
            string memory endpoint,
            bytes memory signature,
            uint64 blockNumber
        )
    {
        if (_position[key][registrant] == 0) revert NotRegistered();
        Entry storage en = _entries[key][registrant];
        return (en.identityDigest, en.platform, en.endpoint, en.signature, en.blockNumber);
    }

    function _printable(bytes calldata s) private pure returns (bool) {
        for (uint256 i = 0; i < s.length; i++) {
            if (s[i] < 0x21 || s[i] > 0x7e) return false;
        }
        return true;
    }
}
